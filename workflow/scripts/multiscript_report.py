"""Snakemake adapter: Table 4, its provenance and the two figures of the multiscript study."""

import json
import os

import pandas as pd

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies import multiscript

with job_log(snakemake.log[0]) as log:  # noqa: F821
    sm = snakemake  # noqa: F821
    evals, runs = [], []
    for path in sm.input.evals:
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
        evals.append(rec)
        runs.append((rec, pd.read_csv(os.path.join(os.path.dirname(path), "metrics.csv"))))
    table = multiscript.table4(evals)
    log.info("Table 4:\n%s", table.to_string(index=False))
    prov = report.provenance(
        config={"multiscript": sm.params.config},
        dataset_files=sm.input.datasets,
        benchmark_files=[b for b in sm.params.benchmarks if os.path.exists(b)],
        job_devices={
            os.path.dirname(p): r["device"] for p, r in zip(sm.input.evals, evals, strict=True)
        },
    )
    curves = multiscript.epoch_curves(runs)
    multiscript.plot_curves(curves, sm.output.curves)
    multiscript.plot_new_losses(curves, sm.output.new_losses)
    report.write_report(table, sm.output.csv, prov)
