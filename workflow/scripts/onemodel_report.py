"""Adapter for rule onemodel_report (workflow/rules/onemodel.smk)."""

import json
from pathlib import Path

import pandas as pd

from hwbench import report
from hwbench.logs import job_log
from hwbench.store import write_csv
from hwbench.studies import onemodel

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in smk.input.evals]
    table, collisions = onemodel.build_report(records, smk.params.config)
    histories = {
        str(Path(p).parent.relative_to(Path(p).parents[2])): pd.read_csv(p)
        for p in smk.input.metrics
    }
    benchmarks = [p for p in smk.params.benchmarks if Path(p).exists()]
    prov = report.provenance(
        config={"onemodel": smk.params.config},
        dataset_files=smk.input.datasets,
        benchmark_files=benchmarks,
        job_devices={
            f"{r['mode']}_{r['discriminator']}/seed{r['seed']}": r["device"] for r in records
        },
    )
    prov["collisions"] = collisions.to_dict(orient="records")
    write_csv(smk.output.collisions, collisions)
    report.save_figure(onemodel.loss_figure(histories), smk.output.figure)
    report.write_report(table, smk.output.table, prov)
    log.info("reports/onemodel:\n%s\ncollisions:\n%s", table.to_string(), collisions.to_string())
