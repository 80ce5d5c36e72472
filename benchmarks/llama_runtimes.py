"""Two llama.cpp runtimes on the same GGUF and the same real meta-prompts: which is faster here.

``llama-cpp-python`` is compiled from source at install (about 5 minutes); ``xllamacpp`` is a
prebuilt wheel. Each runtime runs in its own process (two copies of llama.cpp in one process
would share symbol names), in ABBA order so that a change of machine load during the run
affects both alike. Every call re-evaluates the whole prompt (no prompt cache), with the same
sampling settings and seed as the catalyst's calls.

    python benchmarks/llama_runtimes.py --model qwen2.5-coder-1.5b-instruct --prompts 3

Prints one line per call, a table, then one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import this_machine

RUNTIMES = ("xllamacpp", "llama-cpp-python")
SAMPLING = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 200}


def meta_prompts(count: int) -> list[list[dict[str, str]]]:
    """``count`` catalyst meta-prompts of the stored rounds (see llm_local.py), in turn."""
    sys.path.insert(0, str(Path(__file__).parent))
    from llm_local import load_rounds, render

    rounds = load_rounds()
    return [render(rounds[i % len(rounds)]) for i in range(count)]


def run_xllamacpp(path: str, threads: int, prompts: list) -> list[dict[str, float]]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = 2048
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(params)
    calls = []
    for seed, messages in enumerate(prompts):
        started = time.perf_counter()
        answer = server.handle_chat_completions(
            {"messages": messages, "seed": seed, "cache_prompt": False, **SAMPLING}
        )
        calls.append(_call(answer, time.perf_counter() - started))
    return calls


def run_llama_cpp_python(path: str, threads: int, prompts: list) -> list[dict[str, float]]:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    calls = []
    for seed, messages in enumerate(prompts):
        llm.reset()
        started = time.perf_counter()
        answer = llm.create_chat_completion(messages=messages, seed=seed, **SAMPLING)
        calls.append(_call(answer, time.perf_counter() - started))
    return calls


def _call(answer: dict, seconds: float) -> dict[str, float]:
    usage = answer["usage"]
    return {
        "seconds": seconds,
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
    }


def worker(runtime: str, path: str, threads: int, count: int) -> None:
    prompts = meta_prompts(count)
    started = time.perf_counter()
    run = run_xllamacpp if runtime == "xllamacpp" else run_llama_cpp_python
    calls = run(path, threads, prompts)
    total = time.perf_counter() - started
    print(json.dumps({"runtime": runtime, "calls": calls, "total_s": total}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--prompts", type=int, default=3, help="calls per process")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--worker", choices=RUNTIMES)
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)
    from llm_catalyst.weights.gguf import gguf_path

    path = str(gguf_path(args.model))
    if args.worker:
        worker(args.worker, path, args.threads, args.prompts)
        return
    load_before = os.getloadavg()
    calls: dict[str, list[dict[str, float]]] = {r: [] for r in RUNTIMES}
    order = [*RUNTIMES, *reversed(RUNTIMES)]
    for runtime in order:
        command = [sys.executable, __file__, "--worker", runtime, "--model", args.model]
        command += ["--prompts", str(args.prompts), "--threads", str(args.threads)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        for call in result["calls"]:
            print(
                f"  {runtime:>16}: {call['prompt_tokens']} prompt + "
                f"{call['completion_tokens']} answer tokens in {call['seconds']:.1f} s",
                flush=True,
            )
        calls[runtime] += result["calls"]
    rows = {}
    for runtime, done in calls.items():
        seconds = sum(c["seconds"] for c in done)
        rows[runtime] = {
            "calls": len(done),
            "tokens_per_s": round(sum(c["completion_tokens"] for c in done) / seconds, 2),
            "s_per_call_median": round(statistics.median(c["seconds"] for c in done), 2),
            "prompt_tokens_mean": round(statistics.mean(c["prompt_tokens"] for c in done)),
            "completion_tokens_mean": round(statistics.mean(c["completion_tokens"] for c in done)),
        }
    print(
        f"{'runtime':>16}  {'calls':>5}  {'tok/s':>6}  {'s/call':>6}  {'prompt':>6}  {'answer':>6}"
    )
    for runtime, row in rows.items():
        print(
            f"{runtime:>16}  {row['calls']:>5}  {row['tokens_per_s']:>6}  "
            f"{row['s_per_call_median']:>6}  {row['prompt_tokens_mean']:>6}  "
            f"{row['completion_tokens_mean']:>6}"
        )
    load = {"before": load_before[0], "after": os.getloadavg()[0]}
    print(
        json.dumps(
            {"model": args.model, "threads": args.threads, "load_avg_1min": load, "results": rows}
        )
    )


if __name__ == "__main__":
    main()
