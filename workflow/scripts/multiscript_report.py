"""Snakemake adapter: Table 4, its provenance and the two figures of the multiscript study."""

import json
import os

import pandas as pd

from hwbench import report as tables
from hwbench.logs import job_log
from hwbench.studies.multiscript import report

with job_log(snakemake.log[0]) as log:
    evals, runs = [], []
    for path in snakemake.input.evals:
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
        evals.append(rec)
        runs.append((rec, pd.read_csv(os.path.join(os.path.dirname(path), "metrics.csv"))))
    table = report.table4(evals)
    log.info("Table 4:\n%s", table.to_string(index=False))
    prov = tables.provenance(
        config={"multiscript": snakemake.params.config},
        dataset_files=snakemake.input.datasets,
        benchmark_files=[b for b in snakemake.params.benchmarks if os.path.exists(b)],
        job_devices={
            os.path.dirname(p): r["fit"]["device"]
            for p, r in zip(snakemake.input.evals, evals, strict=True)
        },
        repo=snakemake.params.repo,
        data_note=snakemake.params.data_note,
    )
    curves = report.epoch_curves(runs)
    report.plot_curves(curves, snakemake.output.curves)
    report.plot_new_losses(curves, snakemake.output.new_losses)
    tables.write_report(table, snakemake.output.csv, prov)
