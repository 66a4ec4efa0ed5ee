# Preflight (`make preflight`, docs/datasets.md): one row per dataset the configured DAG
# needs, saying whether it is on disk and intact and what to do next. It reads only the
# disk (no network, nothing written under data/raw) and caches checksums in
# data/checksum_cache.json (by size and mtime), so a rerun hashes only what changed.
#
# The disk is its input, which Snakemake cannot see: `run_at` changes on every request,
# so the report is rebuilt whenever it is asked for.
import time


rule preflight:
    input:
        script=script_path("preflight.py"),
        code=code("preflight"),
    output:
        csv="reports/preflight.csv",
        md="reports/preflight.md",
    log:
        "logs/preflight.log",
    params:
        run_at=lambda w: time.time_ns(),
        cache="data/checksum_cache.json",
    script:
        "../scripts/preflight.py"
