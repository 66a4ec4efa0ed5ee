"""Adapter for rule lifelong_report: reports/lifelong.csv/.md/.json and the figures."""

import json
from collections import defaultdict
from pathlib import Path

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies import lifelong as ll

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    runs = ll.collect_runs(smk.input.evals)
    table = ll.lifelong_table(runs, model=smk.params.model)
    devices = {}
    for path in smk.input.evals:
        devices[str(path)] = json.loads(Path(path).read_text())["device"]
    prov = report.provenance(
        config=smk.params.config,
        dataset_files=smk.input.dataset,
        benchmark_files=[p for p in smk.params.benchmarks if Path(p).exists()],
        job_devices=devices,
        repo=smk.params.repo,
    )
    report.write_report(table, smk.output.table, prov)
    log.info("\n%s", report.to_markdown(table))

    # Figures: group each run's files by (method, order name).
    curves, matrices = defaultdict(list), defaultdict(list)
    for path in smk.input.evals:
        run = json.loads(Path(path).read_text())
        key = (run["method"], run["order_name"])
        curves[key].append(Path(path).with_name("curves.csv"))
        if run["method"] != ll.MULTITASK:
            matrices[key].append(Path(path).with_name("R.csv"))
    ll.plot_curves(curves, smk.output.curves)
    ll.plot_matrices(matrices, smk.output.matrices)
