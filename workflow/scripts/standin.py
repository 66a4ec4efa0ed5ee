"""Adapter for rules standin_arrays and standin_manifest (workflow/rules/standin.smk)."""

from pathlib import Path

from hwbench.datasets.standin import StandinParams, build_standin_arrays, write_standin_manifest
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    params = StandinParams.from_config(smk.params.standin)
    if "manifest" in smk.output.keys():
        write_standin_manifest(
            smk.wildcards.dataset, Path(smk.output.manifest).parent, smk.params.options, params
        )
    else:
        build_standin_arrays(
            smk.wildcards.dataset, Path(smk.output.images).parent, smk.params.options, params
        )
