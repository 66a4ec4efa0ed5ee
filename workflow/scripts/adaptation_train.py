"""Adapter: rule adaptation_train (workflow/rules/adaptation.smk)."""

from pathlib import Path

from hwbench.logs import job_log
from hwbench.studies import adaptation_base as base

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    p = smk.params
    splits, classes = base.load_job_splits(
        smk.input.images, smk.input.split, p.charsets, smk.threads
    )
    log.info(
        "%s: %d classes; train %d, val %d, app %d images",
        smk.wildcards.dataset,
        len(classes),
        *(len(splits[s].y) for s in base.WRITER_SPLITS),
    )
    result = base.train_base(
        splits,
        len(classes),
        Path(smk.output.eval).parent,
        model_cfg=p.model,
        train=p.train,
        seed=p.seed,
    )
    log.info("base CNN accuracy: %s", {k: v for k, v in result.items() if k.endswith("_acc")})
