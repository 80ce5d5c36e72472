"""A real OpenAI-compatible llama.cpp server on loopback (xllamacpp), run as its own process.

    python xllamacpp_server.py MODEL PORT     MODEL: a GGUF preset name or path

Prints the address once the model is loaded and serves until it is killed.
"""

from __future__ import annotations

import sys
import threading

import xllamacpp

from llm_catalyst.weights.gguf import gguf_path


def main(model: str, port: int) -> None:
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf_path(model))
    params.model_alias = {model}
    params.n_ctx = 2048
    # One thread, for generation and for prompts: llama.cpp's workers wait for each other at
    # every step, so on a busy machine (the tests run beside it) one worker preempted stalls
    # the rest; the 135M model needs no more, and the server leaves the tests a core.
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.port = port
    server = xllamacpp.Server(params)
    print(server.listening_address, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
