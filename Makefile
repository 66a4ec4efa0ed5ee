# `make demo` and `make test` each set up .venv themselves on a fresh clone.
# `make help` lists the targets (the `##` comments below).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwbench-installed
TEST_STAMP := $(VENV)/.hwbench-test-installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The headline tables; `make report` covers those that have been built.
TABLES := reports/table4.csv reports/transfer.csv reports/lifelong.csv \
	reports/onemodel.csv reports/adaptation.csv

# Pinned dependencies for `make venv-locked` (docs/cluster.md, "Reproducible software").
LOCK ?= requirements/lock-cuda.txt
CONFIG ?= config/paper.yaml

.DEFAULT_GOAL := help
.PHONY: help demo rehearsal test test-cluster lint bench report dryrun paper-dryrun clean \
	clean-venv prefetch preflight venv-locked lock

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# hwbench itself, without the test extra: what a user of the pipeline needs.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

# The test extra (pytest, ruff, snakefmt, jsonschema, the SLURM plugin) on top.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

demo: $(STAMP) ## set up .venv and build Table 4 on the embedded synthetic data (CPU)
	snakemake --cores all reports/table4.csv
	@echo "table: reports/table4.md; all tables and figures as one page: make report"

# The paper preset's every job shape on generated stand-ins, a few steps each, on this
# machine (docs/rehearsal.md). Its tables say "stand-in data: not a result".
rehearsal: $(STAMP) ## set up .venv and build all five tables of the paper preset on stand-ins (CPU, <= 30 min)
	snakemake --cores all --configfile config/paper.yaml config/rehearsal.yaml -- $(TABLES)
	@echo "tables from stand-in data, not results: reports/*.md; what it checks: docs/rehearsal.md"

test: $(TEST_STAMP) ## run the test suite (without the SLURM cluster test)
	pytest -q -m "not slurm"

# Installs slurm-wlm and munge with apt and starts their daemons (root only).
test-cluster: $(TEST_STAMP) ## run the SLURM test on a throw-away local cluster (root; apt-installs slurm)
	HWBENCH_CLUSTER_TESTS=1 pytest -q -m slurm

lint: $(TEST_STAMP) ## ruff, snakefmt and snakemake --lint
	ruff check .
	ruff format --check .
	snakefmt --check .
	snakemake --lint

bench: $(TEST_STAMP) ## run the performance benchmarks (rows appended to reports/bench.csv)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

report: $(STAMP) ## write reports/report.html: every table and figure built so far
	@built="$(wildcard $(TABLES))"; \
	if [ -z "$$built" ]; then echo "no table built yet: run make demo first" >&2; exit 1; fi; \
	echo "snakemake --report reports/report.html $$built"; \
	snakemake --report reports/report.html $$built

dryrun: $(STAMP) ## list the jobs of the embedded default's whole DAG (snakemake -n)
	snakemake -n --quiet rules

paper-dryrun: $(STAMP) ## list the jobs of the paper-scale DAG (config/paper.yaml)
	snakemake -n --quiet rules --configfile config/paper.yaml

clean: ## remove results/, reports/, logs/ and job benchmarks (never data/)
	rm -rf results logs benchmarks/jobs
	find reports -mindepth 1 ! -name .gitkeep -delete

# Before booking GPUs: which datasets of CONFIG are on disk and intact, and what to do
# about the others. Reads the disk only: no download, nothing written under data/raw.
preflight: $(STAMP) ## report every dataset CONFIG needs: ready, missing, partial or malformed, and the next step
	snakemake --cores 1 reports/preflight.csv --configfile $(CONFIG)
	@echo "table: reports/preflight.md"

# On the submit host: compute nodes then run offline (docs/cluster.md).
prefetch: $(STAMP) ## fetch and verify every dataset and ImageNet weight file (CONFIG=config/paper.yaml)
	snakemake --cores 1 prefetch --configfile $(CONFIG)

venv-locked: ## set up .venv from requirements/lock-cuda.txt (LOCK=...) instead of the newest releases
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP) $(TEST_STAMP)

lock: $(STAMP) ## re-resolve the lock file from pyproject.toml (needs PyPI; requirements/README.md)
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra slurm \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --constraint requirements/torch.txt --generate-hashes -o $(LOCK)

clean-venv: ## remove .venv
	rm -rf $(VENV)
