"""Adapter for rule transfer_report (workflow/rules/transfer.smk)."""

from hwbench.logs import job_log
from hwbench.report import to_markdown
from hwbench.studies.transfer import report

with job_log(snakemake.log[0]) as log:
    table = report.write_report(
        snakemake.input.evals,
        snakemake.params.sets,
        snakemake.params.per_class_set,
        csv=snakemake.output.csv,
        f1=snakemake.output.f1,
        frozen=snakemake.output.frozen,
        per_class_png=snakemake.output.per_class,
        config=snakemake.params.config,
        dataset_files=snakemake.input.data,
        benchmark_files=snakemake.params.benchmarks,
        repo=snakemake.params.repo,
        data_note=snakemake.params.data_note,
    )
    log.info("wrote %s\n%s", snakemake.output.csv, to_markdown(table))
