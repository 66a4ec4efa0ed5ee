"""Adapter: rule adaptation_report (workflow/rules/adaptation.smk)."""

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies.adaptation.report import build_report

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    prov = report.provenance(
        config={"adaptation": p.config, "splits": p.splits},
        dataset_files=snakemake.input.data,
        benchmark_files=snakemake.input.benchmarks,
        repo=p.repo,
        data_note=p.data_note,
    )
    table = build_report(
        runs=p.runs,
        scores_files=snakemake.input.scores,
        prediction_files=snakemake.input.predictions,
        quality_files=snakemake.input.quality,
        datasets=p.datasets,
        eval_files=snakemake.input.evals,
        papers=p.papers,
        knn_ks=p.knn_ks,
        prov=prov,
        out=snakemake.output,
    )
    log.info("\n%s", report.to_markdown(table))
