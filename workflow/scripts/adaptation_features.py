"""Adapter: rule adaptation_features (workflow/rules/adaptation.smk)."""

from pathlib import Path

from hwbench.logs import job_log
from hwbench.studies import adaptation_base as base

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    p = smk.params
    splits, classes = base.load_job_splits(
        smk.input.images, smk.input.split, p.charsets, smk.threads
    )
    base.extract_features(
        splits, classes, Path(smk.input.eval).parent, smk.output[0], model_cfg=p.model
    )
    log.info("features of %d images written", sum(len(s.y) for s in splits.values()))
