"""Read a verified 28x28 dataset (MNIST, Kannada, Dig, MADBase, EMNIST) into data/processed."""

from pathlib import Path

from hwbench.datasets.extract import Limits
from hwbench.datasets.prepare import build_arrays
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    dataset = smk.wildcards.dataset
    build_arrays(
        dataset,
        smk.input.records,
        Path(smk.output.images).parent,
        smk.params.options,
        limits=Limits.from_config(smk.config.get("data", {}).get("extract")),
        raw_root=Path(smk.input.records[0]).parents[2],
    )
