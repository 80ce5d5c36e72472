"""The arithmetic of benchmarks/machine.py on known inputs (no benchmark is run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import machine as bench_machine
from benchmarks.machine import Machine, exceeds_note, peak_figures, vector_unit

XEON = Machine(
    cpu_model="Intel(R) Xeon(R) Processor",
    logical_cpus=2,
    torch_threads=2,
    clock_ghz=2.3,
    max_clock_ghz=None,
    vector_extensions=("avx2", "fma"),
    vector_unit="AVX2 + FMA",
    flops_per_cycle=32,
)


def test_the_widest_vector_unit_sets_the_flops_per_cycle() -> None:
    assert vector_unit({"sse2", "avx", "avx2", "fma", "avx512f"}) == ("AVX-512 (2 FMA units)", 64)
    assert vector_unit({"sse2", "avx", "avx2", "fma"}) == ("AVX2 + FMA", 32)
    assert vector_unit({"sse2", "avx", "avx2"}) == ("AVX", 16)  # AVX2 without FMA
    assert vector_unit({"fp", "asimd"}) == ("NEON (2 FMA pipes)", 16)
    assert vector_unit(set()) is None


def test_physical_peak_is_cores_times_clock_times_flops_per_cycle() -> None:
    assert XEON.physical_peak_gflops == pytest.approx(2 * 2.3 * 32)  # 147.2
    figures = peak_figures(achieved_gflops=36.8, matmul_peak_gflops=92.0, machine=XEON)
    assert figures["physical_peak_gflops"] == 147.2
    assert (figures["flop_utilization"], figures["flop_utilization_physical"]) == (0.4, 0.25)
    assert figures["matmul_peak_note"] is None


def test_a_measured_peak_above_the_physical_one_says_why() -> None:
    note = exceeds_note(184.0, XEON)
    assert note is not None and "turbo" in note
    assert "about 2.88 GHz" in note  # 184 / 147.2 * 2.3
    unknown_clock = Machine("arm", 4, 4, None, None, ("asimd",), "NEON (2 FMA pipes)", 16)
    assert unknown_clock.physical_peak_gflops is None and exceeds_note(1e9, unknown_clock) is None


def test_cpuinfo_is_read_for_model_clock_and_flags(tmp_path: Path, monkeypatch) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Test CPU @ 2.00GHz\ncpu MHz\t\t: 2000.000\n"
        "flags\t\t: fpu sse2 avx avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: Test CPU @ 2.00GHz\ncpu MHz\t\t: 3100.000\n"
        "flags\t\t: fpu sse2 avx avx2 fma\n"
    )
    monkeypatch.setattr(bench_machine, "CPUINFO", cpuinfo)
    monkeypatch.setattr(bench_machine, "MAX_FREQ", tmp_path / "absent")
    found = bench_machine.this_machine()
    assert found.cpu_model == "Test CPU @ 2.00GHz" and found.clock_ghz == pytest.approx(3.1)
    assert found.vector_extensions == ("avx", "avx2", "fma")
    assert (found.vector_unit, found.flops_per_cycle) == ("AVX2 + FMA", 32)
    assert "AVX2 + FMA: 32 fp32 FLOP/cycle/core" in found.describe()
