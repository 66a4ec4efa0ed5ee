"""Adapter: rule adaptation_base_table (workflow/rules/adaptation.smk)."""

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies.adaptation.report import base_split_table

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    table = base_split_table(p.datasets, snakemake.input.evals, p.papers)
    prov = report.provenance(config={"adaptation": p.config}, repo=p.repo, data_note=p.data_note)
    report.write_report(table, snakemake.output.csv, prov)
    log.info("\n%s", report.to_markdown(table))
