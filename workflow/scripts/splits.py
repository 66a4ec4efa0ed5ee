"""Adapter: rule splits (workflow/rules/splits.smk)."""

from hwbench.logs import job_log
from hwbench.splits import make_split, read_meta
from hwbench.store import write_csv

snakemake = snakemake  # noqa: F821, PLW0127 (injected by Snakemake)

with job_log(snakemake.log[0]) as log:
    scheme = snakemake.wildcards.scheme
    meta = read_meta(snakemake.input.meta)
    frame = make_split(scheme, meta, dict(snakemake.params.split), where=snakemake.input.meta)
    write_csv(snakemake.output[0], frame)
    counts = frame.groupby(["split"]).size().to_dict()
    log.info("%s split of %s: %d rows %s", scheme, snakemake.input.meta, len(frame), counts)
