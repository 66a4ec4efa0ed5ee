"""Adapter: rule adaptation_train (workflow/rules/adaptation.smk)."""

from pathlib import Path

from hwbench.logs import job_log
from hwbench.studies.adaptation import job

with job_log(snakemake.log[0]) as log:
    p = snakemake.params
    splits, classes = job.load_job_splits(
        snakemake.input.images, snakemake.input.split, p.charsets, snakemake.threads
    )
    log.info(
        "%s: %d classes; train %d, val %d, app %d images",
        snakemake.wildcards.dataset,
        len(classes),
        *(len(splits[s].y) for s in job.WRITER_SPLITS),
    )
    result = job.train_base(
        splits,
        len(classes),
        Path(snakemake.output.eval).parent,
        model_cfg=p.model,
        train=p.train,
        seed=p.seed,
    )
    log.info("base CNN: %s", result["metrics"])
