# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean venv

# Semantic search runs on PyTorch. Its CPU build goes in first: left to pip, a bare
# `torch` requirement takes the newest release with gigabytes of CUDA libraries.
TORCH ?= torch==2.13.0

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet '$(TORCH)'
	$(BIN)/pip install --quiet -e '.[dev,semantic]'
	touch $(STAMP)

venv: $(STAMP)

## run: start a node on http://127.0.0.1:8080 (embedded: SQLite + local blobs + in-process events)
run: $(STAMP)
	$(BIN)/anarq up

## test: ruff, mypy and the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers (the machine has two cores); a test file stays on one worker, so each file's
# module fixtures are made once.
pytest: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadfile

## bench: run the benchmarks (needs wrk: apt-get install wrk)
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
