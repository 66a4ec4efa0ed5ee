"""Adapter for rule lifelong_report: reports/lifelong.csv/.md/.json/.html and the figures."""

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies.lifelong.report import build_report

with job_log(snakemake.log[0]) as log:
    table = build_report(
        snakemake.input.evals,
        model=snakemake.params.model,
        config=snakemake.params.config,
        dataset_files=snakemake.input.dataset,
        benchmark_files=snakemake.params.benchmarks,
        repo=snakemake.params.repo,
        out=snakemake.output,
    )
    log.info("\n%s", report.to_markdown(table))
