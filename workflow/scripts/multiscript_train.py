"""Snakemake adapter: train and test one model of Table 4 (hwbench.studies.multiscript.job)."""

import os

import torch

from hwbench.logs import job_log
from hwbench.studies.multiscript import job

with job_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    scripts = list(snakemake.params.sources)
    # inputs come in the order of the job's scripts (plan.train_inputs)
    paths = {
        s: (os.path.dirname(str(images)), str(split))
        for s, images, split in zip(
            scripts,
            snakemake.input.images,
            snakemake.input.splits,
            strict=True,
        )
    }
    job.train_job(
        group=snakemake.wildcards.group,
        method=snakemake.wildcards.model,
        seed=int(snakemake.wildcards.seed),
        sources=snakemake.params.sources,
        paths=paths,
        model_cfg=snakemake.params.model,
        train=snakemake.params.train,
        method_params=snakemake.params.method,
        eval_path=snakemake.output.eval,
        select=snakemake.params.select,
    )
