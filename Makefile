# Plain entry points; every Python dependency comes from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck check bench dashboard clean

$(BIN)/cowrieprocessor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## demo: install, then enrich a synthetic Cowrie log offline into demo-output/ (SQLite)
demo: $(BIN)/cowrieprocessor
	$(BIN)/cowrieprocessor demo --dir demo-output

## test: install, then run the whole test suite
test: $(BIN)/cowrieprocessor
	$(BIN)/python -m pytest

lint: $(BIN)/cowrieprocessor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/cowrieprocessor
	$(BIN)/mypy

check: lint typecheck test

## bench: the rerunnable benchmarks (see benchmarks/README.md)
bench: $(BIN)/cowrieprocessor
	$(BIN)/python -m benchmarks.bench_maxmind_lookup
	$(BIN)/python -m benchmarks.bench_cascade
	$(BIN)/python -m benchmarks.bench_ingest_memory

## dashboard: regenerate the committed Grafana dashboard JSON
dashboard: $(BIN)/cowrieprocessor
	$(BIN)/python -m deploy.grafana.generate_dashboard

clean:
	rm -rf $(VENV) demo-output .mypy_cache .ruff_cache .pytest_cache .hypothesis
