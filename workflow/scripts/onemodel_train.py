"""Adapter for rule onemodel_train (workflow/rules/onemodel.smk): one run, one seed."""

import torch

from hwbench.logs import job_log
from hwbench.studies.onemodel import job

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    spec = snakemake.params.spec
    log.info("run %s seed %d: tasks %s", spec["run"], spec["seed"], list(spec["data"]))
    record = job.run(spec, snakemake.output.eval)
    log.info("test metrics: %s", record["metrics"])
