"""Adapter for rule lifelong_report: reports/lifelong.csv/.md/.json/.html and the figures."""

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies.lifelong.report import build_report

with job_log(snakemake.log[0]) as log:
    # params are named as build_report's keywords: model, config, benchmark_files, repo
    params = dict(snakemake.params.items())
    table = build_report(
        snakemake.input.evals, dataset_files=snakemake.input.dataset, out=snakemake.output, **params
    )
    log.info("\n%s", report.to_markdown(table))
