"""The two offline instructors side by side: Qwen2.5-Coder-1.5B-Instruct and SmolLM2-135M-Instruct.

Both run through the same in-process llama.cpp back-end and answer the same catalyst
meta-prompts with the default LLM settings, each model both ways: free (``llm.structured:
false``, the answer parsed from whatever the model wrote) and structured (the default, sampling
constrained to a JSON list of ``num_proposals`` to ``num_proposals + spare`` strings; rows
``NAME_structured``). The prompts are rendered from rounds of real short runs stored in
``meta_prompt_rounds.json`` (the pool each round showed, with its dev losses; up to 8 SST-2,
4 RTE, 4 CB and 4 AG News rounds).
Reports tokens/s (answer tokens over the wall time of the calls, prompt processing included),
seconds per round, prompt and answer tokens per round, and the share of usable proposals: per
wanted (the proposals a round keeps over ``num_proposals`` per round, the figure that counts)
and per asked (every usable text, surplus included, over the ``num_proposals + spare`` asked).
On the SST-2 rounds every kept proposal is scored on that run's dev split with that run's
backbone and fit policy, as the loop scores a restart candidate; the gap is the best proposal's
dev loss minus the soft prompt's (negative: a proposal beat it), median over the rounds that had
a proposal. ``answer_ms_per_token``: a round's seconds fitted as a line in its answer tokens, the
slope (``seconds_besides_answer``, the intercept, is mostly the prompt's reading).
``--threads`` sets llama.cpp's threads (default: its own choice, every core); on a machine where
another process holds a core, 1 thread is several times faster than 2.

    python benchmarks/llm_local.py [--rounds N] [--models qwen smollm2] [--structured both|on|off]
        [--threads N]
    python benchmarks/llm_local.py --build-fixture RUN_DIR [RUN_DIR ...]   # rebuild the rounds

The stored rounds come from ``llm-catalyst compare --config configs/grid.yaml --methods
projection-restart`` runs (no LLM needed): SST-2 seed 1 as configured, and short runs with
``--steps 8 --rounds 4 --set loop.stage_steps=2 --set data.dev_shots=4 --set
train.batch_size=4`` (CB also ``--shots 8``: its smallest class has 16 train examples).
Prints one line per round, a table, then one line of JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from llm_catalyst.data.registry import get_task
from llm_catalyst.llm.client import Message
from llm_catalyst.llm.config import LLMConfig
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.proposer import ProposalRound, Proposer, ScoredPrompt
from llm_catalyst.llm.scripted import ScriptedClient

FIXTURE = Path(__file__).with_name("meta_prompt_rounds.json")
MODELS = {"qwen": "qwen2.5-coder-1.5b-instruct", "smollm2": "smollm2-135m-instruct"}
ROUNDS_PER_TASK = {"sst2": 8, "rte": 4, "cb": 4, "agnews": 4}


def build_fixture(run_dirs: list[Path]) -> None:
    """The rounds of finished runs (``events.jsonl`` + ``config.yaml``), as few as asked for."""
    taken: dict[str, list[dict[str, Any]]] = {task: [] for task in ROUNDS_PER_TASK}
    for run_dir in run_dirs:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        task = config["data"]["task"]
        tried: list[str] = []
        events = [json.loads(line) for line in (run_dir / "events.jsonl").open()]
        for event in (e for e in events if e["event"] == "round"):
            current, *pool = event["pool"]
            if len(taken[task]) < ROUNDS_PER_TASK[task]:
                taken[task].append(
                    {
                        "task": task,
                        "data": {k: config["data"][k] for k in ("shots", "dev_shots", "seed")},
                        "backbone": config["backbone"]["model"],
                        "prompt": {k: config["prompt"][k] for k in ("length", "fit", "filler")},
                        "round": event["round"],
                        "soft_prompt": {
                            "dev_loss": current["dev_loss"],
                            "dev_accuracy": current["dev_accuracy"],
                        },
                        "pool": [
                            {k: c[k] for k in ("text", "dev_loss", "dev_accuracy")} for c in pool
                        ],
                        "tried": list(tried),
                    }
                )
            tried += [c["text"] for c in [*pool, *event["proposals"]]]
    # Tasks take turns, so that the first rounds of a shortened run (--rounds) cover every task.
    rounds = [entry for turn in itertools.zip_longest(*taken.values()) for entry in turn if entry]
    FIXTURE.write_text(json.dumps(rounds, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(rounds)} rounds to {FIXTURE}")


def load_rounds() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text())


def history(entry: dict[str, Any]) -> list[ScoredPrompt]:
    return [ScoredPrompt(c["text"], c["dev_loss"], c["dev_accuracy"]) for c in entry["pool"]]


def _config(model: str, structured: bool = True, threads: int | None = None) -> LLMConfig:
    return LLMConfig.model_validate(
        {
            "backend": "llama_cpp",
            "model": model,
            "cache": {"enabled": False},
            "structured": structured,
            "n_threads": threads,
        }
    )


def render(entry: dict[str, Any]) -> list[Message]:
    """The catalyst meta-prompt of a stored round, as a chat model is asked it."""
    config = _config(MODELS["qwen"])
    proposer = Proposer(build_gateway(config, client=ScriptedClient([])), config)
    return proposer.render(get_task(entry["task"]), history(entry))


def ask(
    model: str, rounds: list[dict[str, Any]], structured: bool, threads: int | None
) -> tuple[float, list[ProposalRound]]:
    """Seconds to load the model (0 once loaded: the process keeps it), and its answer to
    every stored round (seed = round position)."""
    config = _config(model, structured, threads)
    started = time.perf_counter()
    proposer = Proposer(build_gateway(config), config)
    load_s = time.perf_counter() - started
    answers = []
    for i, entry in enumerate(rounds):
        task = get_task(entry["task"])
        result = proposer.propose(task, history(entry), round_index=i, tried=entry["tried"])
        answers.append(result)
        way = " structured" if structured else ""
        where = f"{entry['task']} seed {entry['data']['seed']} round {entry['round']}"
        print(
            f"  [{model}{way}] {where}: "
            f"{len(result.proposals)}/{config.proposer.num_proposals} usable "
            f"({len(result.proposals) + len(result.unused)} of {result.asked} asked), "
            f"{result.usage.prompt_tokens} + {result.usage.completion_tokens} tokens, "
            f"{result.latency_s:.1f} s",
            flush=True,
        )
        for rejection in result.rejected:
            print(f"      rejected ({rejection.reason}): {rejection.text[:80]}")
    return load_s, answers


def proposal_gaps(
    rounds: list[dict[str, Any]], answers: dict[str, list[ProposalRound]]
) -> dict[str, list[float | None]]:
    """Per model and SST-2 round: best proposal's dev loss minus the soft prompt's (None: none)."""
    from llm_catalyst.backbones import BackboneConfig, build_backbone
    from llm_catalyst.data.config import DataConfig, load_splits
    from llm_catalyst.prompts.projection import FitPolicy, Vocabulary, embed_text
    from llm_catalyst.training.scoring import evaluate_many

    gaps: dict[str, list[float | None]] = {name: [] for name in answers}
    backbones: dict[str, Any] = {}
    for i, entry in enumerate(rounds):
        if entry["task"] != "sst2":
            continue
        splits = load_splits(DataConfig(task="sst2", **entry["data"]))
        if entry["backbone"] not in backbones:
            backbones[entry["backbone"]] = build_backbone(
                BackboneConfig(model=entry["backbone"]), splits.task
            )
        backbone = backbones[entry["backbone"]]
        vocab = Vocabulary.of(backbone)
        policy = FitPolicy.parse(entry["prompt"]["fit"], filler=entry["prompt"]["filler"])
        for name, model_answers in answers.items():
            texts = model_answers[i].proposals
            if not texts:
                gaps[name].append(None)
                continue
            rows = [
                embed_text(t, vocab, entry["prompt"]["length"], policy).embeddings for t in texts
            ]
            best = min(r.loss for r in evaluate_many(backbone, rows, splits.dev))
            gaps[name].append(best - entry["soft_prompt"]["dev_loss"])
            print(
                f"  [{name}] sst2 seed {entry['data']['seed']} round {entry['round']}: "
                f"best proposal {best:.4f} vs soft prompt {entry['soft_prompt']['dev_loss']:.4f}"
            )
    return gaps


def summary(load_s: float, answers: list[ProposalRound], wanted: int) -> dict[str, Any]:
    """One way of asking, over the rounds. Every round makes one call (``calls_per_round``
    1), so the proposals asked are ``asked`` per round."""
    seconds = [a.latency_s for a in answers]
    usable = sum(len(a.proposals) + len(a.unused) for a in answers)
    return {
        **_time_per_answer_token(answers),
        "load_s": round(load_s, 2),
        "tokens_per_s": round(sum(a.usage.completion_tokens for a in answers) / sum(seconds), 2),
        "seconds_per_round": round(statistics.mean(seconds), 2),
        "seconds_per_round_max": round(max(seconds), 2),
        "prompt_tokens_per_round": round(statistics.mean(a.usage.prompt_tokens for a in answers)),
        "answer_tokens_per_round": round(
            statistics.mean(a.usage.completion_tokens for a in answers)
        ),
        "usable_share": round(sum(len(a.proposals) for a in answers) / (wanted * len(answers)), 3),
        "asked": answers[0].asked,
        "usable_share_of_asked": round(usable / sum(a.asked for a in answers), 3),
        "rounds_skipped": sum(a.skipped for a in answers),
        "examples": [p for a in answers for p in a.proposals][:4],
    }


def _time_per_answer_token(answers: list[ProposalRound]) -> dict[str, float | None]:
    """A round's seconds as a line in its answer tokens (least squares over the rounds): the
    slope is what an answer token costs, the intercept the rest (mostly reading the prompt,
    which is about the same length every round), so it shows which of the two a round's time
    goes to. None where every round wrote as many tokens (no line to fit)."""
    tokens = [a.usage.completion_tokens for a in answers]
    if len(set(tokens)) < 2:
        return {"answer_ms_per_token": None, "seconds_besides_answer": None}
    fit = statistics.linear_regression(tokens, [a.latency_s for a in answers])
    return {
        "answer_ms_per_token": round(1000 * fit.slope, 1),
        "seconds_besides_answer": round(fit.intercept, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-fixture", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--rounds", type=int, default=None, help="only the first N rounds")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument(
        "--structured", choices=("both", "on", "off"), default="both", help="which way to ask"
    )
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp's threads")
    args = parser.parse_args()
    if args.build_fixture:
        build_fixture(args.build_fixture)
        return
    load_before = os.getloadavg()[0]
    rounds = load_rounds()[: args.rounds]
    wanted = LLMConfig().proposer.num_proposals
    ways = {"both": (False, True), "on": (True,), "off": (False,)}[args.structured]
    rows, answers = {}, {}
    for name in args.models:
        for structured in ways:
            row = f"{name}_structured" if structured else name
            load_s, answers[row] = ask(MODELS[name], rounds, structured, args.threads)
            rows[row] = summary(load_s, answers[row], wanted)
    gaps = proposal_gaps(rounds, answers)
    for name, row in rows.items():
        scored = [g for g in gaps[name] if g is not None]
        row["sst2_rounds_with_proposals"] = f"{len(scored)}/{len(gaps[name])}"
        row["median_proposal_gap"] = round(statistics.median(scored), 4) if scored else None
        row["rounds_beating_soft_prompt"] = sum(g < 0 for g in scored)
    print(
        f"{'model':>18}  {'tok/s':>6}  {'s/round':>7}  {'tokens in+out':>13}  {'usable':>6}  "
        f"{'of asked':>8}  {'SST-2 gap':>9}  {'beat S':>6}"
    )
    for name, row in rows.items():
        tokens = f"{row['prompt_tokens_per_round']}+{row['answer_tokens_per_round']}"
        print(
            f"{name:>18}  {row['tokens_per_s']:>6}  {row['seconds_per_round']:>7}  "
            f"{tokens:>13}  {row['usable_share']:>6}  {row['usable_share_of_asked']:>8}  "
            f"{row['median_proposal_gap']!s:>9}  {row['rounds_beating_soft_prompt']:>6}"
        )
    load = {"before": load_before, "after": os.getloadavg()[0]}
    keys = (
        "usable_share",
        "usable_share_of_asked",
        "tokens_per_s",
        "median_proposal_gap",
        "seconds_per_round",
        "answer_ms_per_token",
    )
    flat = {f"{name}_{key}": rows[name][key] for name in rows for key in keys}
    print(
        json.dumps(
            {
                **flat,
                "rounds": len(rounds),
                "threads": args.threads,
                "load_avg_1min": load,
                "results": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
