"""Time how long the command line takes to answer when it has no model to load.

The goal (the issue "Nothing silent, nothing leaked, nothing left running"): ``--help``, an
error in the options and an error in the configuration (``run --set train.nonsense=1``: the
run's configuration is validated before any model code is imported) print in under 2 s on a
warm machine. Each command is started
``--repeats`` times as a user starts it (a new process through the installed entry point), and
its fastest start is reported: other processes on the machine slow some starts down. For scale,
the same is done for ``python -c "import torch, transformers"``, which every command paid
before the library was imported lazily. The load average is printed beside the figures: on a
loaded machine every figure is slower.

Usage: python benchmarks/cli_start.py [--repeats 5]
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import this_machine

BIN = Path(sys.executable).parent
CASES = {
    "--help": [str(BIN / "llm-catalyst"), "--help"],
    "run --help": [str(BIN / "llm-catalyst"), "run", "--help"],
    "compare --seeds one (an option error)": [
        str(BIN / "llm-catalyst"),
        "compare",
        "--seeds",
        "one",
    ],
    "run --set train.nonsense=1 (a config error)": [
        str(BIN / "llm-catalyst"),
        "run",
        "--set",
        "train.nonsense=1",
    ],
    "import torch, transformers (for scale)": [
        sys.executable,
        "-c",
        "import torch, transformers",
    ],
}


def fastest(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(this_machine().describe(), flush=True)
    load_before = os.getloadavg()[0]
    figures = {name: fastest(argv, args.repeats) for name, argv in CASES.items()}
    for name, seconds in figures.items():
        print(f"{name:45s} {seconds:6.2f} s (fastest of {args.repeats})")
    print(f"load average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(json.dumps({"seconds": figures, "load_average_before": load_before}))


if __name__ == "__main__":
    main()
