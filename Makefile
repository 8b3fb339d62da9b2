# Two commands from a fresh clone:  make demo   and   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: demo test lint typecheck unit integration os-packages schemas bench clean

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

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m schemas.export --check

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) os-packages
	$(BIN)/pytest -q

schemas: $(STAMP)
	$(BIN)/python -m schemas.export

bench: $(STAMP) os-packages
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .dev .mypy_cache .pytest_cache .ruff_cache
