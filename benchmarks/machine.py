"""The machine a benchmark ran on, printed by every benchmark beside its figures.

A figure means little without its machine: the CPU model, the cores torch computes on, the clock
the CPU reports and the vector extensions it has. From these, ``physical_peak_gflops`` is the
fp32 rate the cores could reach at most: cores x clock x FLOPs per cycle of the widest vector
unit found (``FLOPS_PER_CYCLE``). It assumes two FMA units per core (one AVX-512 unit on some
Xeons halves it) and that the reported clock is the one the cores run at (turbo runs above it,
and a VM often reports a nominal clock), so a measured rate above it is possible:
``exceeds_note`` says why then.

    python benchmarks/machine.py    # prints this machine and its JSON
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
MAX_FREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")

# fp32 FLOPs per cycle and core, widest unit first: lanes x 2 (a fused multiply-add) x 2 units,
# except plain AVX and SSE, which issue one add and one multiply per cycle.
FLOPS_PER_CYCLE: tuple[tuple[str, frozenset[str], int], ...] = (
    ("AVX-512 (2 FMA units)", frozenset({"avx512f"}), 64),
    ("AVX2 + FMA", frozenset({"avx2", "fma"}), 32),
    ("AVX", frozenset({"avx"}), 16),
    ("NEON (2 FMA pipes)", frozenset({"asimd"}), 16),
    ("SSE2", frozenset({"sse2"}), 8),
)
# The extensions worth printing (what kernels dispatch on), in this order.
SHOWN = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx_vnni",
    "amx_bf16",
    "amx_tile",
    "asimd",
    "sve",
)


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    logical_cpus: int
    torch_threads: int
    clock_ghz: float | None
    max_clock_ghz: float | None
    vector_extensions: tuple[str, ...]
    vector_unit: str | None
    flops_per_cycle: int | None

    @property
    def physical_peak_gflops(self) -> float | None:
        """Cores torch uses x reported clock x fp32 FLOPs per cycle; None when either is unknown."""
        if self.clock_ghz is None or self.flops_per_cycle is None:
            return None
        return physical_peak_gflops(self.torch_threads, self.clock_ghz, self.flops_per_cycle)

    def describe(self) -> str:
        clock = "clock unknown" if self.clock_ghz is None else f"{self.clock_ghz:.2f} GHz reported"
        if self.max_clock_ghz is not None:
            clock += f" (max {self.max_clock_ghz:.2f} GHz)"
        peak = self.physical_peak_gflops
        unit = (
            "no known vector unit"
            if self.vector_unit is None
            else f"{self.vector_unit}: {self.flops_per_cycle} fp32 FLOP/cycle/core"
        )
        lines = [
            f"machine: {self.cpu_model}; {self.logical_cpus} logical CPUs, torch uses "
            f"{self.torch_threads} threads; {clock}",
            f"  vector extensions: {' '.join(self.vector_extensions) or 'none found'}; {unit}",
        ]
        if peak is not None:
            lines.append(
                f"  physical fp32 peak {peak:.1f} GFLOP/s ({self.torch_threads} cores x "
                f"{self.clock_ghz:.2f} GHz x {self.flops_per_cycle})"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "physical_peak_gflops": self.physical_peak_gflops}


def physical_peak_gflops(cores: int, clock_ghz: float, flops_per_cycle: int) -> float:
    return cores * clock_ghz * flops_per_cycle


def vector_unit(flags: set[str]) -> tuple[str, int] | None:
    """The widest fp32 vector unit whose flags are all present, with its FLOPs per cycle."""
    for name, needed, flops in FLOPS_PER_CYCLE:
        if needed <= flags:
            return name, flops
    return None


def exceeds_note(measured_gflops: float, machine: Machine) -> str | None:
    """Why a measured rate can exceed the physical peak; None when it does not."""
    peak = machine.physical_peak_gflops
    if peak is None or measured_gflops <= peak:
        return None
    needed = measured_gflops / peak * (machine.clock_ghz or 0.0)
    return (
        f"the measured {measured_gflops:.1f} GFLOP/s exceeds the physical peak {peak:.1f}: the "
        f"cores must run at about {needed:.2f} GHz or more, above the reported clock (turbo, or "
        "a nominal clock reported by a VM), or have more FMA units than assumed"
    )


def peak_figures(
    achieved_gflops: float, matmul_peak_gflops: float, machine: Machine
) -> dict[str, float | str | None]:
    """A step's FLOP rate against the measured matmul peak and against the physical one."""
    physical = machine.physical_peak_gflops
    return {
        "matmul_peak_gflops": round(matmul_peak_gflops, 1),
        "physical_peak_gflops": None if physical is None else round(physical, 1),
        "flop_utilization": round(achieved_gflops / matmul_peak_gflops, 3),
        "flop_utilization_physical": None
        if physical is None
        else round(achieved_gflops / physical, 3),
        "matmul_peak_note": exceeds_note(matmul_peak_gflops, machine),
    }


def _cpuinfo() -> tuple[str | None, float | None, set[str]]:
    """Model name, highest 'cpu MHz' in GHz and the flags (x86 'flags', ARM 'Features')."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None, set()
    model, mhz, flags = None, [], set()
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Model", "Hardware") and model is None:
            model = value
        elif key == "cpu MHz":
            mhz.append(float(value))
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return model, (max(mhz) / 1000 if mhz else None), flags


def _max_clock_ghz() -> float | None:
    try:
        return int(MAX_FREQ.read_text().strip()) / 1e6
    except (OSError, ValueError):
        return None


def this_machine() -> Machine:
    import torch

    model, clock, flags = _cpuinfo()
    found = vector_unit(flags)
    return Machine(
        cpu_model=model or platform.processor() or platform.machine() or "unknown CPU",
        logical_cpus=os.cpu_count() or 1,
        torch_threads=torch.get_num_threads(),
        clock_ghz=clock,
        max_clock_ghz=_max_clock_ghz(),
        vector_extensions=tuple(flag for flag in SHOWN if flag in flags),
        vector_unit=None if found is None else found[0],
        flops_per_cycle=None if found is None else found[1],
    )


if __name__ == "__main__":
    here = this_machine()
    print(here.describe())
    print(json.dumps(here.as_dict()))
