# Two commands on a fresh clone (Python >= 3.11 and make):
#   make console   the operations console on ./onward.db with demo runs
#   make test      the whole test suite
#   make docs      the documentation site, into build/site/
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: console test bench lint docs

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[postgres]' --group test --group docs
	touch $(STAMP)

console: $(STAMP)
	$(VENV)/bin/onward console --demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install --quiet --group bench
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m pip install --quiet --group lint
	$(VENV)/bin/ruff check .
	$(PY) tools/typecheck.py

docs: $(STAMP)
	$(PY) -m pip install --quiet --group docs
	$(VENV)/bin/mkdocs build --strict
