"""Does llama.cpp's seeded answer depend on its thread count?

Replays the LLM calls of one recorded run directory (its ``llm_calls.jsonl``: the exact
messages and sampling settings) through the in-process llama.cpp back-end at each thread count,
in one process, and says per call whether the answer equals the recorded one. The experiment's
grid recorded its answers at llama.cpp's default here (2 threads on 2 cores), so a run at
another count that reproduces them would make ``llm.n_threads`` irrelevant to reproducibility.

    python benchmarks/llama_threads.py results/experiment/mr/llm-only/seed1 --threads 1 2

Prints one line per (threads, call), then one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from llm_catalyst.llm.client import LLMRequest
from llm_catalyst.llm.config import SamplingConfig
from llm_catalyst.llm.llama_cpp import LlamaCppClient
from machine import this_machine


def recorded_calls(run_dir: Path) -> list[dict]:
    lines = (run_dir / "llm_calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def as_request(call: dict) -> LLMRequest:
    sampling = SamplingConfig.model_validate({**call["request"]["params"], "n": 1})
    return LLMRequest(tuple(call["request"]["messages"]), sampling)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)
    calls = recorded_calls(args.run_dir)
    model = calls[0]["identity"]["model"]
    same: dict[int, int] = {}
    for threads in args.threads:
        client = LlamaCppClient(model, n_threads=threads)
        same[threads] = 0
        for index, call in enumerate(calls):
            start = time.perf_counter()
            text = client.complete(as_request(call)).texts[0]
            equal = text == call["texts"][0]
            same[threads] += equal
            print(
                f"threads {threads} call {index}: {time.perf_counter() - start:.1f} s, "
                f"{'same as recorded' if equal else 'DIFFERENT'}: {text[:60]!r}"
            )
    print(json.dumps({"model": model, "calls": len(calls), "same_as_recorded": same}))


if __name__ == "__main__":
    main()
