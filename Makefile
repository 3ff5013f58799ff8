# Two commands on a fresh clone (Python >= 3.11 and make):
#   make console   the operations console on ./onward.db with demo runs
#   make test      the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: console test bench lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[postgres]' --group test
	touch $(STAMP)

console: $(STAMP)
	$(VENV)/bin/onward console --demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m pip install --quiet --group lint
	$(VENV)/bin/ruff check .
	$(PY) tools/typecheck.py
