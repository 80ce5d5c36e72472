"""Time one prompt-tuning step of ours against PEFT prompt tuning on SmolLM2-135M-Instruct.

Both train the same soft prompt from the same initial value on the same SST-2 batches with AdamW.
PEFT is used the way its users do: ``peft_model(input_ids, attention_mask).logits``, then
cross-entropy at the last real position over the label-word ids.

The first steps check that the per-step losses of the two agree (and warm both up). Then each
timed batch is stepped ``--repeats`` times by both, alternating and flipping the order every time,
so that load from other processes hits both alike; a batch's time is the fastest of its repeats,
the same best-of rule as for the matmul peak (a large square fp32 ``torch.matmul``, measured in
the same run). Seconds per step, the speedup (PEFT / ours on the same batch) and the achieved
FLOP rate (required FLOPs of the batch / our time) are medians over batches. Medians of all timed
steps are printed too. Repeats keep both trajectories identical: both take every step.

FLOPs are those our step must compute, counted from the model's shapes and each sequence's real
length, not from what any implementation happens to execute:
  * matmuls of every linear layer for the prompt (once: it is shared by the batch) and for each
    sequence's real tokens; no padding, no vocabulary-sized logits (only the label-word rows);
  * attention score and value products over the causal pairs of each sequence (its own tokens and
    the prompt), not over masked pairs;
  * backward: only input gradients (weights are frozen): one matmul per forward matmul of the
    linear layers, two per attention product;
  * left out as not required: in the last layer, queries, attention output and MLP of all but
    each sequence's final position (and none for the prompt); in the first layer, input gradients
    of the query/key/value projections at text positions and the key/value gradients of text
    tokens (only the prompt's are needed).
Executed matmul FLOPs of both steps (torch's FlopCounterMode, which does not see the CPU attention
kernel) are printed beside it for reference. The machine's load average is printed too: other
processes slow the steps down but not the best-of matmul peak.

The machine comes first (benchmarks/machine.py), with its physical fp32 peak (cores x clock x
FLOPs per cycle of its widest vector unit); the achieved rate is set against both peaks, and a
matmul peak above the physical one is explained (turbo above the reported clock, most often).

Usage: python benchmarks/step_speed.py [--batches 6] [--repeats 3] [--batch-size 16]
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from peft import PromptTuningConfig, TaskType, get_peft_model
from torch.utils.flop_counter import FlopCounterMode

from llm_catalyst.backbones import (
    Batch,
    CausalLMBackbone,
    load_pretrained_causal_lm,
)
from llm_catalyst.data import load_task
from machine import peak_figures, this_machine

MODEL = "smollm2-135m-instruct"
DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CHECK_STEPS = 5


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of one large square matmul."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def required_flops(config, prompt_len: int, lengths: list[int]) -> float:
    """FLOPs one training step must compute (see the module docstring for what is counted)."""
    d = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    dq = config.num_attention_heads * head_dim
    dkv = config.num_key_value_heads * head_dim
    q_o = 2 * (d * dq + dq * d)
    k_v = 2 * (2 * d * dkv)
    mlp = 2 * (3 * d * config.intermediate_size)
    per_token = q_o + k_v + mlp
    layers = config.num_hidden_layers
    p = prompt_len
    tokens = p + sum(lengths)
    finals = len(lengths)
    pair = 4 * dq  # score and value products, per (query, key) pair
    prompt_pairs = p * (p + 1) // 2
    text_pairs = sum(n * p + n * (n + 1) // 2 for n in lengths)
    final_pairs = sum(p + n for n in lengths)  # the last layer's final queries only
    prompt_key_pairs = prompt_pairs + p * sum(lengths)  # pairs whose key is a prompt slot

    full_layer_linear = tokens * per_token
    last_layer_linear = tokens * k_v + finals * (q_o + mlp)
    forward = (layers - 1) * full_layer_linear + last_layer_linear
    forward += ((layers - 1) * (prompt_pairs + text_pairs) + final_pairs) * pair
    # Backward, layers 2..L-1 in full; the last layer as in its forward (twice for attention).
    backward = (layers - 2) * full_layer_linear + last_layer_linear
    backward += ((layers - 2) * (prompt_pairs + text_pairs) + final_pairs) * 2 * pair
    # First layer: MLP and attention output at all positions, q/k/v inputs at prompt slots only;
    # attention: dP over all pairs, dQ for prompt queries, dK and dV for prompt keys.
    backward += tokens * (2 * dq * d + mlp) + p * (2 * d * dq + k_v)
    backward += (prompt_pairs + text_pairs) * pair / 2
    backward += prompt_pairs * pair / 2 + prompt_key_pairs * pair
    head = finals * 2 * d * 2 * 2  # two label rows, forward and backward
    return float(forward + backward + head)


def executed_flops(step: Callable[[], float]) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=6, help="timed batches")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per batch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prompt-len", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    here = this_machine()
    print(here.describe(), flush=True)

    data = load_task("sst2", args.data_dir)
    model, tokenizer = load_pretrained_causal_lm(MODEL)
    ours = CausalLMBackbone(model, tokenizer, data.task, name=MODEL)
    peft_base, _ = load_pretrained_causal_lm(MODEL)
    peft_config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=args.prompt_len
    )
    peft_model = get_peft_model(peft_base, peft_config)
    label_ids = torch.tensor(ours.label_token_ids)

    pool = list(data.train)
    random.Random(args.seed).shuffle(pool)
    size = args.batch_size
    batches = [ours.collate(pool[i * size : (i + 1) * size]) for i in range(CHECK_STEPS)]
    timed = [
        ours.collate(pool[i * size : (i + 1) * size])
        for i in range(CHECK_STEPS, CHECK_STEPS + args.batches)
    ]
    rows = torch.randint(1000, len(tokenizer), (args.prompt_len,))
    initial = ours.embedding_table[rows].clone()

    prompt = initial.clone().requires_grad_(True)
    ours_opt = torch.optim.AdamW([prompt], lr=args.lr)
    peft_embedding = peft_model.prompt_encoder["default"].embedding
    with torch.no_grad():
        peft_embedding.weight.copy_(initial)
    peft_opt = torch.optim.AdamW([peft_embedding.weight], lr=args.lr)

    def ours_step(batch: Batch) -> float:
        scores = ours.class_scores(prompt, batch)
        loss = torch.nn.functional.cross_entropy(scores, batch.labels)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()
        return loss.item()

    def peft_step(batch: Batch) -> float:
        mask = batch.inputs["attention_mask"]
        logits = peft_model(input_ids=batch.inputs["input_ids"], attention_mask=mask).logits
        last = args.prompt_len + mask.sum(dim=1) - 1
        scores = logits[torch.arange(len(batch)), last][:, label_ids]
        loss = torch.nn.functional.cross_entropy(scores, batch.labels)
        peft_opt.zero_grad()
        loss.backward()
        peft_opt.step()
        return loss.item()

    peak = matmul_peak_gflops()
    steps = {"ours": ours_step, "peft": peft_step}
    losses: dict[str, list[float]] = {"ours": [], "peft": []}
    for batch in batches:
        for name in ("ours", "peft"):
            losses[name].append(steps[name](batch))
    check_diff = max(abs(a - b) for a, b in zip(losses["ours"], losses["peft"], strict=True))

    samples: dict[str, list[list[float]]] = {"ours": [], "peft": []}
    flip = False
    for batch in timed:
        for name in samples:
            samples[name].append([])
        for _ in range(args.repeats):
            for name in ("peft", "ours") if flip else ("ours", "peft"):
                start = time.perf_counter()
                losses[name].append(steps[name](batch))
                samples[name][-1].append(time.perf_counter() - start)
            flip = not flip
    all_diff = max(abs(a - b) for a, b in zip(losses["ours"], losses["peft"], strict=True))
    peak = max(peak, matmul_peak_gflops())

    best = {name: [min(ts) for ts in samples[name]] for name in samples}
    lengths = [b.inputs["attention_mask"].sum(dim=1).tolist() for b in timed]
    per_batch = [required_flops(model.config, args.prompt_len, n) for n in lengths]
    flops = statistics.mean(per_batch)
    ours_s = statistics.median(best["ours"])
    peft_s = statistics.median(best["peft"])
    speedup = statistics.median(p / o for p, o in zip(best["peft"], best["ours"], strict=True))
    achieved = statistics.median(f / t for f, t in zip(per_batch, best["ours"], strict=True)) / 1e9
    ours_executed = executed_flops(lambda: ours_step(timed[0]))
    peft_executed = executed_flops(lambda: peft_step(timed[0]))
    real = sum(lengths[0])
    padded = timed[0].inputs["input_ids"].numel()
    median = {name: statistics.median(t for ts in samples[name] for t in ts) for name in samples}

    print(f"model {MODEL}, SST-2 train, batch {args.batch_size}, prompt {args.prompt_len} slots,")
    print(
        f"threads {torch.get_num_threads()}, {args.batches} timed batches x {args.repeats} repeats"
    )
    print(f"packing {'on' if ours.packing else 'off'}; first timed batch: {real} real text tokens,")
    print(f"  {padded} in PEFT's padded layout (plus {args.prompt_len} prompt slots per row)")
    print()
    print(f"{'':28}{'ours':>12}{'PEFT':>12}")
    print(f"{'s/step (best of repeats)':28}{ours_s:12.3f}{peft_s:12.3f}")
    print(
        f"{'  per batch':28}"
        + "  ".join(f"{o:.2f}/{p:.2f}" for o, p in zip(best["ours"], best["peft"], strict=True))
    )
    print(f"{'s/step (median, all)':28}{median['ours']:12.3f}{median['peft']:12.3f}")
    print(f"{'executed matmul GFLOP (*)':28}{ours_executed / 1e9:12.1f}{peft_executed / 1e9:12.1f}")
    print(f"{'required GFLOP/step (mean)':28}{flops / 1e9:12.1f}")
    print(f"{'achieved GFLOP/s':28}{achieved:12.1f}")
    figures = peak_figures(achieved, peak, here)
    print(f"matmul peak {peak:.1f} GFLOP/s; utilization {figures['flop_utilization']:.3f}")
    if figures["physical_peak_gflops"] is not None:
        print(
            f"physical peak {figures['physical_peak_gflops']:.1f} GFLOP/s; utilization "
            f"{figures['flop_utilization_physical']:.3f}"
        )
    if figures["matmul_peak_note"] is not None:
        print(f"note: {figures['matmul_peak_note']}")
    print("(*) one step on the first timed batch, torch FlopCounterMode: it counts linear layers")
    print("    and logits, not the CPU attention kernel")
    print(f"load average during the run (1, 5, 15 min): {os.getloadavg()}")
    by_median = median["peft"] / median["ours"]
    print(f"speedup vs PEFT {speedup:.2f}x ({by_median:.2f}x from the medians of all steps)")
    print(
        f"loss diff vs PEFT: max {check_diff:.2e} over the first {CHECK_STEPS} steps, "
        f"{all_diff:.2e} over all {len(losses['ours'])}"
    )
    result = {
        "speedup_vs_peft": round(speedup, 3),
        "ours_s_per_step": round(ours_s, 4),
        "peft_s_per_step": round(peft_s, 4),
        **figures,
        "achieved_gflops": round(achieved, 1),
        "max_loss_diff_vs_peft": check_diff,
        "machine": here.as_dict(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
