"""Time batched candidate scoring against sequential scoring on SmolLM2-135M-Instruct.

Every round the catalyst loop scores K candidate prompts on the dev split.

Sequential: what the loop would do without batching: one ``evaluate(backbone, prompt, dev,
batch_size)`` call per candidate. Each call already uses the backbone's fastest single-prompt
path: the prompt's keys and values are computed once and shared by the batch, and the real
tokens of the examples are packed into rows without padding.

Batched: one ``evaluate_many(backbone, candidates, dev, batch_size)`` call. Each forward pass
holds up to ``batch_size`` rows: ``batch_size // K`` length-sorted examples, tokenised once and
repeated for every candidate, with a (rows, P, d) prompt stack that the backbone runs in its
padded layout (so the prompt is recomputed in every row).

One by one: the literal reading of "not one by one": every (candidate, example) pair in its
own forward pass. Reported for orientation only; ``speedup_vs_sequential`` is measured against
the sequential way above, the fastest non-batched scoring this package has.

Candidates are K prompts of P random vocabulary tokens (what the projected pool texts are); the
data is the 16-shot dev split of SST-2 for seed 1 (32 examples), as in the few-shot protocol.
Both ways are run ``--repeats`` times, alternating which goes first; a way's time is its fastest
repeat (other processes on the machine slow some repeats down). Both must give the same losses:
the largest difference is printed.

Usage: python benchmarks/candidate_scoring.py [--k 8] [--repeats 2] [--batch-size 64]
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.data.config import DataConfig, load_splits
from llm_catalyst.prompts.projection import Vocabulary
from llm_catalyst.prompts.soft_prompt import random_prompt
from llm_catalyst.records import Metrics
from llm_catalyst.training.scoring import evaluate, evaluate_many
from machine import this_machine

MODEL = "smollm2-135m-instruct"
DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=8, help="candidate prompts scored together")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per forward pass")
    parser.add_argument("--prompt-len", type=int, default=10)
    parser.add_argument("--shots", type=int, default=16, help="dev examples per class")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)

    splits = load_splits(DataConfig(task="sst2", data_dir=args.data_dir, shots=args.shots))
    backbone = build_backbone(BackboneConfig(model=MODEL), splits.task)
    vocab = Vocabulary.of(backbone)
    candidates = torch.stack(
        [random_prompt(vocab, args.prompt_len, seed).embeddings for seed in range(args.k)]
    )
    dev = splits.dev

    def sequential() -> list[Metrics]:
        return [evaluate(backbone, prompt, dev, args.batch_size) for prompt in candidates]

    def batched() -> list[Metrics]:
        return evaluate_many(backbone, candidates, dev, args.batch_size)

    def one_by_one() -> list[Metrics]:
        return [evaluate(backbone, prompt, dev, 1) for prompt in candidates]

    ways = {"sequential": sequential, "batched": batched, "one_by_one": one_by_one}
    times: dict[str, list[float]] = {name: [] for name in ways}
    results: dict[str, list[Metrics]] = {}
    order = list(ways)
    for repeat in range(args.repeats):
        for name in order:
            start = time.perf_counter()
            results[name] = ways[name]()
            times[name].append(time.perf_counter() - start)
            print(f"repeat {repeat + 1} {name}: {times[name][-1]:.2f} s", flush=True)
        order.reverse()
    pairs = [
        (a, b)
        for other in ("batched", "one_by_one")
        for a, b in zip(results["sequential"], results[other], strict=True)
    ]
    diff = max(abs(a.loss - b.loss) for a, b in pairs)
    same_accuracy = all(a.accuracy == b.accuracy for a, b in pairs)
    best = {name: min(ts) for name, ts in times.items()}
    print(
        f"best of {args.repeats}: sequential {best['sequential']:.2f} s, batched "
        f"{best['batched']:.2f} s, one by one {best['one_by_one']:.2f} s; "
        f"max |loss difference| {diff:.2e}"
    )
    print(
        json.dumps(
            {
                "speedup_vs_sequential": round(best["sequential"] / best["batched"], 3),
                "speedup_vs_one_by_one": round(best["one_by_one"] / best["batched"], 3),
                "k": args.k,
                "dev_examples": len(dev),
                "prompt_len": args.prompt_len,
                "batch_rows": args.batch_size,
                "sequential_s": round(best["sequential"], 3),
                "batched_s": round(best["batched"], 3),
                "one_by_one_s": round(best["one_by_one"], 3),
                "all_times_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
                "max_abs_loss_diff": diff,
                "same_accuracy": same_accuracy,
                "packed_single_prompt_layout": getattr(backbone, "packing", None),
                "torch_threads": torch.get_num_threads(),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "model": MODEL,
            }
        )
    )


if __name__ == "__main__":
    main()
