"""Fetch ImageNet weights into torch's cache (rule fetch_weights, a local rule)."""

import os

from hwbench import weights
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    offline = os.environ.get("HWBENCH_OFFLINE", "") in ("1", "true", "yes")
    weights.fetch(smk.params.url, smk.output[0], offline=offline)
