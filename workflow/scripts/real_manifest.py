"""Extract/render an image dataset (NIST, DeepWriting, Amharic) and write its manifest."""

from pathlib import Path

from hwbench.datasets.extract import Limits
from hwbench.datasets.prepare import build_manifest
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    dataset = smk.wildcards.dataset
    build_manifest(
        dataset,
        smk.input.records,
        smk.params.options,
        limits=Limits.from_config(smk.config.get("data", {}).get("extract")),
        raw_root=Path(smk.output.manifest).parents[1],
    )
