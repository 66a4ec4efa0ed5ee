"""How long `snakemake -n` takes to plan the whole DAG (every study, every dataset).

Issue 9 asks for a paper-scale dry run (config/paper.yaml: real datasets, 30 seeds,
every study) in a few seconds. Each DAG is planned in an empty working folder (only
the config files copied), so every job is planned; the median of ``--repeats`` runs
is appended to reports/bench.csv with the job count, beside the embedded default's.

    python benchmarks/dryrun.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = ROOT / "reports" / "bench.csv"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGET_S = 5.0  # "a few seconds"


def dry_run(workdir: Path, configfile: Path | None) -> tuple[float, int]:
    """Wall seconds of one `snakemake -n` in ``workdir`` and the number of jobs planned."""
    cmd = [SNAKEMAKE, "-n", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    totals = re.findall(r"^total\s+(\d+)$", proc.stdout, re.M)
    if not totals:
        raise SystemExit(f"no job count in the dry run's output:\n{proc.stdout[-3000:]}")
    return seconds, int(totals[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shutil.copy2(ROOT / "config.yaml", workdir / "config.yaml")
        (workdir / "config").mkdir()
        paper = shutil.copy2(ROOT / "config/paper.yaml", workdir / "config/paper.yaml")
        for name, configfile in (("embedded default", None), ("config/paper.yaml", paper)):
            runs = [dry_run(workdir, configfile) for _ in range(args.repeats)]
            seconds = statistics.median(s for s, _ in runs)
            jobs = runs[0][1]
            verdict = "meets" if seconds <= TARGET_S else "MISSES"
            print(
                f"snakemake -n, {name}: {jobs} jobs planned in {seconds:.2f} s "
                f"(median of {args.repeats}; {verdict} the {TARGET_S:.0f} s target)"
            )
            note = f"{name}, empty working folder, median of {args.repeats}"
            for metric, value, unit, target in (
                ("wall", round(seconds, 2), "s", f"<= {TARGET_S:g}"),
                ("jobs", jobs, "jobs", ""),
            ):
                rows.append(
                    dict(benchmark="dry_run", metric=metric, value=value, unit=unit)
                    | dict(kind="measured", target=target, note=note)
                )
    append_bench_rows(BENCH_CSV, rows)


if __name__ == "__main__":
    main()
