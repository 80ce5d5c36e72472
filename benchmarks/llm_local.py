"""The local default LLM as an instructor: speed and the share of usable proposals.

Runs the default LLM set-up (SmolLM2-135M-Instruct in-process through transformers, no key,
no cache) for ``--calls`` real proposer rounds, half on an SST-2 history and half on an RTE
history, one call per round, each with its own seed. Reports tokens/s (completion tokens over
wall time of the calls, prompt processing included), seconds per round of C proposals, and the
share of usable proposals (accepted / C asked for). The histories mix readable prompts with
projection-like token salad; their scores are illustrative, as a catalyst round would show.

    python benchmarks/llm_local.py --calls 20 --template auto --template list

Prints a table, then one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from llm_catalyst.data.registry import get_task
from llm_catalyst.llm.config import LLMConfig
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.proposer import Proposer, ScoredPrompt

HISTORIES = {
    "sst2": [
        ScoredPrompt("ĠFilm Ġawful Ġfriendship Ġreviewer", 0.74, 0.53),
        ScoredPrompt("movie review sentiment", 0.66, 0.59),
        ScoredPrompt("overall verdict critics opinion", 0.61, 0.66),
        ScoredPrompt("Was the reviewer happy with this movie?", 0.55, 0.72),
        ScoredPrompt("Read the review and say whether the film was good or bad.", 0.49, 0.78),
    ],
    "rte": [
        ScoredPrompt("Ġpremise Ġthus Ġhypothesis Ġtrue", 0.72, 0.51),
        ScoredPrompt("entailment question", 0.70, 0.53),
        ScoredPrompt("Does the first text say the second is true?", 0.66, 0.58),
        ScoredPrompt("Decide if the hypothesis follows from the premise.", 0.63, 0.61),
    ],
}


def run(template: str, calls: int) -> dict[str, object]:
    config = LLMConfig.model_validate(
        {"cache": {"enabled": False}, "proposer": {"template": template}}
    )
    started = time.perf_counter()
    proposer = Proposer(build_gateway(config), config)
    load_s = time.perf_counter() - started
    asked = config.proposer.num_proposals
    rounds = []
    for i in range(calls):
        task_name = ("sst2", "rte")[i % 2]
        result = proposer.propose(get_task(task_name), HISTORIES[task_name], round_index=i)
        rounds.append(result)
        print(
            f"  [{template}] {task_name} round {i}: {result.status}, {len(result.proposals)}/"
            f"{asked} usable, {result.usage.completion_tokens} tokens, {result.latency_s:.1f} s",
            flush=True,
        )
    seconds = [r.latency_s for r in rounds]
    tokens = sum(r.usage.completion_tokens for r in rounds)
    parsed = sum(len(r.proposals) + len(r.rejected) for r in rounds)
    accepted = sum(len(r.proposals) for r in rounds)
    return {
        "template": proposer.template_name,
        "calls": calls,
        "load_s": round(load_s, 2),
        "tokens_per_s": round(tokens / sum(seconds), 2),
        "s_per_round_mean": round(statistics.mean(seconds), 2),
        "s_per_round_median": round(statistics.median(seconds), 2),
        "s_per_round_max": round(max(seconds), 2),
        "proposals_asked_per_round": asked,
        "usable_share": round(accepted / (asked * calls), 3),
        "usable_of_parsed": round(accepted / parsed, 3) if parsed else 0.0,
        "rounds_skipped": sum(r.skipped for r in rounds),
        "examples": [p for r in rounds for p in r.proposals][:6],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--template", action="append", default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = [run(template, args.calls) for template in args.template or ["auto"]]
    header = (
        f"{'template':>9}  {'calls':>5}  {'tok/s':>6}  {'s/round':>7}  {'median':>6}  "
        f"{'max s':>6}  {'usable':>6}  {'of parsed':>9}  {'skipped':>7}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['template']:>9}  {row['calls']:>5}  {row['tokens_per_s']:>6}  "
            f"{row['s_per_round_mean']:>7}  {row['s_per_round_median']:>6}  "
            f"{row['s_per_round_max']:>6}  "
            f"{row['usable_share']:>6}  {row['usable_of_parsed']:>9}  {row['rounds_skipped']:>7}"
        )
    # Other processes on a small machine slow every step: the load average says how quiet it was.
    load = {"before": load_before, "after": os.getloadavg()[0]}
    print(json.dumps({"model": LLMConfig().model, "load_avg_1min": load, "results": rows}))


if __name__ == "__main__":
    main()
