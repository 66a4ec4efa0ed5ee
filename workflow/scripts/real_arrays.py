"""Read a verified 28x28 dataset (MNIST, Kannada, Dig, MADBase, EMNIST, ...) or a manual word
dataset (IAM, IFN/ENIT) into data/processed."""

from pathlib import Path

from hwbench.datasets.extract import Limits
from hwbench.datasets.prepare import build_arrays
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    dataset = smk.wildcards.dataset
    options = dict(smk.params.options)
    if not smk.input.records:  # a manual dataset (IAM, IFN/ENIT): read with the job's threads
        options["workers"] = smk.threads
    build_arrays(
        dataset,
        smk.input.records,
        Path(smk.output.images).parent,
        options,
        limits=Limits.from_config(smk.config.get("data", {}).get("extract")),
        raw_root=Path(smk.input.records[0]).parents[2] if smk.input.records else "data/raw",
    )
