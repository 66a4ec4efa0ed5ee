"""Adapter: rule preprocess (workflow/rules/preprocess.smk)."""

from pathlib import Path

from hwbench.logs import job_log
from hwbench.preprocess import preprocess_manifest

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

with job_log(snakemake.log[0]) as log:
    cfg = snakemake.config["preprocess"]
    summary = preprocess_manifest(
        snakemake.input.manifest,
        Path(snakemake.output.images).parent,
        **snakemake.params.preprocess,
        workers=cfg["workers"] or snakemake.threads,
        on_error=cfg["on_error"],
        max_pixels=cfg.get("max_pixels", 25_000_000),
    )
    log.info("done: %d images, %d skipped", summary["images"], len(summary["skipped"]))
