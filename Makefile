# The developer workflow. Every target bootstraps .venv itself, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs into the one .venv, each with its stamp: serving needs only the package itself
# (about 35 packages); tests, lint, docs and benchmarks need the dev extra (about 140).
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.installed-serve

.PHONY: serve test test-fast lint fmt typecheck docs docs-config generate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(SERVE_STAMP)

serve: $(SERVE_STAMP)  ## start the server on 127.0.0.1:8000 with SQLite and the demo agent
	$(BIN)/outlast serve

# Tests run in parallel (pytest-xdist): most of an end-to-end test is waiting on a server process,
# so 3 workers keep 2 cores busy. 4 were 5% faster, but loaded the machine so that a replica
# with --lease 2 missed its renewal and lost a run mid-test (Dec 1). loadgroup keeps each
# module's shared server on one worker.
TEST_WORKERS ?= 3

# A test marked exclusive restarts the PostgreSQL server the others use: it runs alone, last.
test: $(STAMP) docs  ## run every test (tests/README.md: the layout and how long each part takes)
	sh scripts/install_browser.sh
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not exclusive"
	$(BIN)/pytest -m exclusive

test-fast: $(STAMP)  ## the unit and in-process API tests only, no server processes
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup tests/unit tests/api

lint: $(STAMP) docs-config  ## ruff, mypy, and the generated files in step with their sources
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/python scripts/unasync.py --check

docs-config: $(STAMP)  ## fail when docs/configuration.md is not what the option table generates
	$(BIN)/python scripts/gen_config_docs.py --check

generate: $(STAMP)  ## rewrite the generated files: client/_sync.py, docs/configuration.md
	$(BIN)/python scripts/unasync.py
	$(BIN)/python scripts/gen_config_docs.py

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP) docs-config  ## build the documentation site into site/; any warning (a broken link) fails
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)  ## baseline vs outlast, side by side
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
