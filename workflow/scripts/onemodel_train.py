"""Adapter for rule onemodel_train (workflow/rules/onemodel.smk): one run, one seed."""

from pathlib import Path

import torch

from hwbench.logs import job_log
from hwbench.store import write_json
from hwbench.studies import onemodel

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    torch.set_num_threads(smk.threads)
    run_dir = Path(smk.output.eval).parent
    onemodel.prepare_run_dir(run_dir, smk.params.spec)
    spec = onemodel.spec_from_dict(smk.params.spec)
    log.info("run %s seed %d: tasks %s", smk.wildcards.run, spec.seed, [t.name for t in spec.tasks])
    record = onemodel.run(spec, run_dir)
    log.info("test metrics: %s", record["metrics"])
    write_json(smk.output.eval, record)
