"""Write reports/preflight.{csv,md}: the state of every dataset the config needs."""

from hwbench.logs import job_log
from hwbench.preflight import write_preflight

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_log(smk.log[0]):
    write_preflight(dict(smk.config), smk.output.csv, smk.output.md, smk.params.cache)
