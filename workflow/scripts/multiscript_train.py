"""Snakemake adapter: train and test one model of Table 4 (hwbench.studies.multiscript)."""

import os

import torch

from hwbench.logs import job_log
from hwbench.store import write_json
from hwbench.studies import multiscript

with job_log(snakemake.log[0]):  # noqa: F821
    sm = snakemake  # noqa: F821
    torch.set_num_threads(sm.threads)
    scripts = list(sm.params.sources)
    # inputs come in the order of the job's scripts (see workflow/rules/multiscript.smk)
    paths = {
        s: (os.path.dirname(str(images)), str(split))
        for s, images, split in zip(scripts, sm.input.images, sm.input.splits, strict=True)
    }
    record = multiscript.train_job(
        group=sm.wildcards.group,
        method=sm.wildcards.model,
        seed=int(sm.wildcards.seed),
        sources=sm.params.sources,
        paths=paths,
        model_cfg=sm.params.model,
        train=sm.params.train,
        method_params=sm.params.method,
        run_dir=sm.params.run_dir,
        select=sm.params.select,
    )
    write_json(sm.output.eval, record)
