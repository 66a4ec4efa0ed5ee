"""Adapter: rule verify (workflow/rules/verify.smk)."""

from hwbench.logs import job_log
from hwbench.verify import verify_stores

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

with job_log(snakemake.log[0]):
    verify_stores(snakemake.params.stores, snakemake.output[0])
