"""Fetch (or accept a local copy of) one registered dataset file and record its checksum."""

from pathlib import Path

from hwbench.datasets.prepare import fetch_file
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    dataset, name = smk.wildcards.dataset, smk.wildcards.file
    data = smk.config.get("data", {})
    options = data.get(dataset, {})
    fetch_file(
        dataset,
        name,
        raw_root=Path(smk.output.record).parents[2],
        local_copy=options.get("local_copy"),
        variant=options.get("variant"),
        download_options=data.get("download", {}),
        record=smk.output.record,
    )
