"""Peak memory of loading a backbone and of one training step, per backbone, precision and option.

Every configuration runs in a fresh child process (this script with ``--child``), so nothing
loaded for one configuration inflates the next. Per configuration:

  * peak RSS: the child's whole-life peak resident memory, from ``os.wait4``'s rusage
    (``ru_maxrss``) - imports, loading and the step together;
  * model resident: the child's RSS (VmRSS) once the backbone is built and has scored the batch
    once without gradients, minus its RSS before loading. The forward pass matters: weights
    loaded from safetensors are memory-mapped and count as resident only once read;
  * step above resident: the peak RSS during one training step (batch of 16 SST-2 sentences,
    10-slot prompt, AdamW) minus the resident memory before it. The kernel's peak counter
    (VmHWM) is reset just before the step by writing 5 to /proc/self/clear_refs, so this is the
    step's own peak: activations kept for the backward pass, gradients, optimizer state;
  * on a GPU (``--device cuda``): ``torch.cuda.max_memory_allocated`` after loading and during
    the step.

Options measured: float32 and bfloat16 weights; gradient checkpointing on the step; and, for the
causal LMs, a device map that offloads the second half of the decoder layers to disk (Accelerate
``dispatch_model``; the weights are read back when the layer runs). Step seconds are printed for
orientation only: they depend on the machine's load. A checkpointed step also runs in the padded
layout (see backbones/causal_lm.py), which is slower than the packed one.

Backbones whose offline weights are not installed are skipped and listed.

Usage: python benchmarks/memory.py [--backbones a,b] [--dtypes float32,bfloat16] [--device cpu]
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import this_machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
BACKBONES = ("smollm2-135m-instruct", "all-minilm-l6-v2", "gemma-3-270m")
CAUSAL = ("smollm2-135m-instruct", "gemma-3-270m")
BATCH = 16
MIB = 1024 * 1024


def _status_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None, field
    return int(match.group(1)) / 1024


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _offload_map(model_config: Any, folder: str) -> dict[str, Any]:
    """Llama-style module names: embeddings, norm and head resident, later layers on disk."""
    layers = model_config.num_hidden_layers
    device_map: dict[str, str] = {
        "model.embed_tokens": "cpu",
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    for i in range(layers):
        device_map[f"model.layers.{i}"] = "disk" if i >= layers // 2 else "cpu"
    return {"device_map": device_map, "offload_folder": folder}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Load one configuration, optionally take one training step, report memory."""
    import torch
    from transformers import AutoConfig

    from llm_catalyst.backbones import BackboneConfig, build_backbone
    from llm_catalyst.data.config import DataConfig, load_splits
    from llm_catalyst.prompts.config import PromptConfig
    from llm_catalyst.prompts.projection import Vocabulary
    from llm_catalyst.prompts.soft_prompt import init_prompt
    from llm_catalyst.training.config import TrainConfig
    from llm_catalyst.training.trainer import PromptTrainer
    from llm_catalyst.weights.presets import PRESETS

    torch.manual_seed(0)
    splits = load_splits(DataConfig(task="sst2", data_dir=DATA_DIR, shots=BATCH // 2, seed=1))
    options: dict[str, Any] = {
        "model": spec["backbone"],
        "dtype": spec["dtype"],
        "device": spec["device"],
        "gradient_checkpointing": spec["checkpointing"],
    }
    offload = tempfile.TemporaryDirectory() if spec["offload"] else None
    if offload is not None:
        local = PRESETS[spec["backbone"]].local()
        options |= _offload_map(AutoConfig.from_pretrained(local), offload.name)
    cuda = spec["device"] == "cuda"
    before = _status_mib("VmRSS")
    backbone = build_backbone(BackboneConfig(**options), splits.task)
    prompt = init_prompt(PromptConfig(), Vocabulary.of(backbone), seed=1).embeddings
    with torch.no_grad():
        batch = backbone.collate(splits.train[:BATCH]).to(backbone.device)
        backbone.class_scores(prompt.to(backbone.device), batch)
    result: dict[str, Any] = {
        "rss_before_load_mib": before,
        "model_resident_mib": _status_mib("VmRSS") - before,
    }
    if cuda:
        result["gpu_after_load_mib"] = torch.cuda.max_memory_allocated() / MIB
    if spec["step"]:
        config = TrainConfig(steps=1, batch_size=BATCH, progress=False)
        trainer = PromptTrainer(backbone, prompt, splits.train, config, seed=1)
        resident = _status_mib("VmRSS")
        result["peak_reset"] = _reset_peak()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        trainer.train_step()
        result["step_s"] = time.perf_counter() - start
        result["step_above_resident_mib"] = _status_mib("VmHWM") - resident
        if cuda:
            result["gpu_step_peak_mib"] = torch.cuda.max_memory_allocated() / MIB
    if offload is not None:
        offload.cleanup()
    return result


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a fresh process; its whole-life peak RSS from wait4."""
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        stdout = process.stdout.read()  # type: ignore[union-attr]
        # wait4, not wait: it returns the rusage of this child alone.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{spec} failed:\n{errors.read()[-3000:]}")
    measured = json.loads(stdout.strip().splitlines()[-1])
    return {**spec, **measured, "peak_rss_mib": usage.ru_maxrss / 1024}


def _installed(name: str) -> bool:
    from llm_catalyst.weights.presets import PRESETS

    return PRESETS[name].local() is not None


def _settings(backbone: str, dtype: str) -> list[tuple[str, dict[str, Any]]]:
    rows = [
        ("load", {"step": False, "checkpointing": False, "offload": False}),
        ("step", {"step": True, "checkpointing": False, "offload": False}),
        ("step + checkpointing", {"step": True, "checkpointing": True, "offload": False}),
    ]
    if backbone in CAUSAL and dtype == "float32":
        on_disk = {"offload": True}
        rows += [
            ("half the layers on disk: load", {**rows[0][1], **on_disk}),
            ("half on disk: step", {**rows[1][1], **on_disk}),
            ("half on disk: step + checkpointing", {**rows[2][1], **on_disk}),
        ]
    return rows


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(this_machine().describe(), flush=True)
    backbones = [b for b in args.backbones.split(",") if b]
    skipped = [b for b in backbones if not _installed(b)]
    rows = []
    for backbone in (b for b in backbones if b not in skipped):
        for dtype in args.dtypes.split(","):
            for label, flags in _settings(backbone, dtype):
                spec = {"backbone": backbone, "dtype": dtype, "device": args.device, **flags}
                row = {"setting": label, **_measure(spec)}
                print(f"measured {backbone} {dtype} {label}", file=sys.stderr, flush=True)
                rows.append(row)
    gpu = args.device == "cuda"
    headers = ["backbone", "dtype", "setting", "peak RSS MiB", "model resident MiB"]
    headers += ["step above resident MiB"]
    headers += ["GPU after load MiB", "GPU step peak MiB"] if gpu else ["step s"]
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        cells = [row["backbone"], row["dtype"], row["setting"], _cell(row["peak_rss_mib"])]
        cells += [_cell(row["model_resident_mib"]), _cell(row.get("step_above_resident_mib"))]
        if gpu:
            cells += [_cell(row.get("gpu_after_load_mib")), _cell(row.get("gpu_step_peak_mib"))]
        else:
            cells.append("—" if "step_s" not in row else f"{row['step_s']:.1f}")
        print("| " + " | ".join(cells) + " |")
    if skipped:
        print(f"\nskipped (offline weights not installed): {', '.join(skipped)}")
    print(json.dumps({"device": args.device, "batch": BATCH, "skipped": skipped, "rows": rows}))


if __name__ == "__main__":
    main()
