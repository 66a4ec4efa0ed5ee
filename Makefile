# `make demo` and `make test` each set up .venv themselves on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwbench-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The local limit on concurrent GPU jobs: this machine's GPU count. It stays on the
# local command line; profiles/default also applies to cluster runs (docs/cluster.md).
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU')
# Pinned dependencies for `make venv-locked` (docs/cluster.md, "Reproducible software").
LOCK ?= requirements/lock-cuda.txt
CONFIG ?= config/paper.yaml

.PHONY: demo test lint bench clean-venv prefetch venv-locked lock

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	snakemake --cores all --resources gpu=$(GPUS) reports/table4.csv

test: $(STAMP)
	pytest -q

lint: $(STAMP)
	ruff check .
	ruff format --check .
	snakefmt --check .
	snakemake --lint

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# Every dataset and ImageNet weight file $(CONFIG) reads, fetched and verified on this
# (submit) host, so compute nodes can run offline.
prefetch: $(STAMP)
	snakemake --cores 1 prefetch --configfile $(CONFIG)

# .venv from the lock file instead of the newest releases (same result on any machine).
venv-locked:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml (needs PyPI; see requirements/README.md).
lock:
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra slurm \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --constraint requirements/torch.txt --generate-hashes -o $(LOCK)

clean-venv:
	rm -rf $(VENV)
