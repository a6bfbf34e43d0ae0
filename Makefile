# The two set-up commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install warmup serve test test-fast lint bench

# CPU torch first: a plain `torch` requirement (pulled by sentence-transformers) resolves to a
# CUDA build of several GB; with 2.13.0 (CPU) installed, the rest of the resolve keeps it.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,ladybug]'  # the graph tests run on both drivers
	touch $@

# The one-time model conversion happens here, not in the first client's first call.
install: $(VENV)/.installed warmup

warmup: $(VENV)/.installed
	$(BIN)/mem0-mcp warmup

# stdout carries the server's JSON-RPC and nothing else: the recipe is not echoed, and any
# set-up output (a first install, make's own messages) goes to stderr.
serve:
	@$(MAKE) --no-print-directory -s install >&2
	@exec $(BIN)/mem0-mcp serve

lint: install
	$(BIN)/ruff check mem0_mcp tests benchmarks
	$(BIN)/mypy

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: lint
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest ran no test: failing" >&2; exit 1; fi; exit $$rc

# Everything not marked slow (no real model, no child process): under a minute.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python benchmarks/latency.py
