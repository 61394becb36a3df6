# Two commands set everything up on a fresh machine: `make sandbox` and `make test`.
# Both bootstrap .venv from a bare python3, idempotently (re-installs only when
# pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: test lint sandbox bench run clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test: $(STAMP)
	bash tests/ensure_postgres.sh
	bash tests/ensure_browser.sh
	bash tests/ensure_tools.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -rs $(PYTEST_ARGS)

sandbox: $(STAMP)
	$(BIN)/udesk-bridge sandbox

bench: $(STAMP)
	bash tests/ensure_postgres.sh
	$(BIN)/python -m tests.bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
