# Two commands from a fresh clone:  make demo   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: demo test lint typecheck pytest unit integration os-packages schemas bench clean

$(STAMP): pyproject.toml
	$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "envnet needs Python >= 3.11"'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

os-packages:
	@bash deploy/dev/install-os-packages.sh

demo: $(STAMP) os-packages
	$(BIN)/envnet demo $(DEMO_ARGS)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m schemas.export --check

typecheck: $(STAMP)
	$(BIN)/mypy

# The whole suite, unit and integration: what `make test` and CI run.
pytest: $(STAMP) os-packages
	$(BIN)/pytest -q --durations=20

# The fast suite: tests/unit/, no services started, no OS packages needed.
unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration"

# tests/integration/: real mosquitto, influxd, victoria-metrics, aggregator and edge processes.
integration: $(STAMP) os-packages
	$(BIN)/pytest -q -m integration

schemas: $(STAMP)
	$(BIN)/python -m schemas.export

bench: $(STAMP) os-packages
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .dev .mypy_cache .pytest_cache .ruff_cache
