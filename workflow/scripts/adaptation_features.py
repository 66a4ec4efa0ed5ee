"""Adapter: rule adaptation_features (workflow/rules/adaptation.smk)."""

from pathlib import Path

from hwbench.logs import job_log
from hwbench.studies.adaptation import job

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    splits, classes = job.load_job_splits(
        snakemake.input.images, snakemake.input.split, p.charsets, snakemake.threads
    )
    job.extract_features(
        splits, classes, Path(snakemake.input.eval).parent, snakemake.output[0], model_cfg=p.model
    )
    log.info("features of %d images written", sum(len(s.y) for s in splits.values()))
