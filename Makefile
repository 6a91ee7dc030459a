# Shequn — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help install demo serve test lint typecheck test-sqlite test-postgres bench browser clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)  ## create .venv and install Shequn with its dev tools

demo: install  ## migrate var/shequn.sqlite3, load the demo chain, serve on 127.0.0.1:8000
	$(BIN)/shequn demo

lint: install  ## ruff, and the app layers (import-linter, pyproject.toml)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache

typecheck: install  ## mypy
	$(BIN)/mypy

browser:  ## make sure Debian's chromium is there for the browser tests
	@bash scripts/ensure-chromium.sh

test: install browser lint typecheck  ## lint, type check, then the suite on SQLite and on PostgreSQL
	@bash scripts/run-tests.sh

bench: install  ## benchmarks, one JSON line each (installs wrk for the HTTP one)
	@bash scripts/ensure-wrk.sh
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
