"""Adapter for rule onemodel_report (workflow/rules/onemodel.smk)."""

import json
from pathlib import Path

import pandas as pd

from hwbench import report as hwreport
from hwbench.logs import job_log
from hwbench.store import write_csv
from hwbench.studies.onemodel import report

with job_log(snakemake.log[0]) as log:
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in snakemake.input.evals]
    table, collisions = report.build_report(records, snakemake.params.config)
    histories = {
        str(Path(p).parent.relative_to(Path(p).parents[2])): pd.read_csv(p)
        for p in snakemake.input.metrics
    }
    prov = hwreport.provenance(
        config={"onemodel": snakemake.params.config},
        dataset_files=snakemake.input.datasets,
        benchmark_files=[p for p in snakemake.params.benchmarks if Path(p).exists()],
        job_devices=report.job_devices(records),
        repo=snakemake.params.repo,
        data_note=snakemake.params.data_note,
    )
    prov["collisions"] = collisions.to_dict(orient="records")
    write_csv(snakemake.output.collisions, hwreport.mark_data(collisions, prov.get("data")))
    hwreport.save_figure(report.loss_figure(histories), snakemake.output.figure)
    fig5 = report.fig5_points(snakemake.params.config["phoc_levels"])
    hwreport.save_figure(report.fig5_figure(fig5), snakemake.output.fig5)
    hwreport.write_report(table, snakemake.output.csv, prov)
    log.info("reports/onemodel:\n%s\ncollisions:\n%s", table.to_string(), collisions.to_string())
