# `make demo` and `make test` each set up .venv themselves on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwbench-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	snakemake --cores all reports/table4.csv

test: $(STAMP)
	pytest -q

lint: $(STAMP)
	ruff check .
	ruff format --check .
	snakefmt --check .
	snakemake --lint

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
