"""docs/rehearsal.md's cost block, written from one real rehearsal run.

    python tools/rehearsal_cost.py

Runs `make rehearsal`'s command (the paper preset's five tables on stand-ins,
config/paper.yaml + config/rehearsal.yaml) on the committed tree (git archive HEAD) in
an empty folder, then rewrites the block between the markers in docs/rehearsal.md:
the run's wall time, job count and disk use, and per rule the jobs, the longest
job's wall time and the largest peak memory (from Snakemake's benchmark files), with
the commit, the machine and the load. Takes as long as the rehearsal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docrun import (  # noqa: E402
    REPO,
    disk_use,
    job_peaks,
    load,
    minutes,
    rewrite_block,
    run_snakemake,
    snapshot_run,
)

COMMAND = "python tools/rehearsal_cost.py"
START = f"<!-- rehearsal-cost:start ({COMMAND}) -->"
END = "<!-- rehearsal-cost:end -->"
DOC = REPO / "docs" / "rehearsal.md"
TABLES = [
    "reports/table4.csv",
    "reports/transfer.csv",
    "reports/lifelong.csv",
    "reports/onemodel.csv",
    "reports/adaptation.csv",
]


def block(seconds: float, nbytes: int, peaks: dict[str, dict], info: dict) -> str:
    """The block's body: one sentence and a table per rule."""
    jobs = sum(p["jobs"] for p in peaks.values())
    lines = [
        f"One `make rehearsal` run in an empty folder at commit {info['commit']}, on "
        f"{info['machine']} (load {info['load_before']} before, {info['load_after']} "
        f"after): {jobs} jobs, {minutes(seconds)} wall time, {nbytes / 1e9:.1f} GB written.",
        "",
        "| rule | jobs | longest job (s) | largest peak RSS (MB) |",
        "|---|---|---|---|",
    ]
    for rule, p in sorted(peaks.items()):
        lines.append(f"| {rule} | {p['jobs']} | {p['s']:.0f} | {p['max_rss']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    with snapshot_run("hwbench-rehearsal-") as (source, workdir, info):
        configs = [str(source / "config/paper.yaml"), str(source / "config/rehearsal.yaml")]
        seconds = run_snakemake(
            source, workdir, ["--cores", "all", "--configfile", *configs, "--", *TABLES]
        )
        info["load_after"] = load()
        nbytes, peaks = disk_use(workdir), job_peaks(workdir)
    rewrite_block(args.doc, START, END, block(seconds, nbytes, peaks, info))
    print(f"{args.doc}: rehearsal block written ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
