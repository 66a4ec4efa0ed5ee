"""Time the default synthetic dataset's generation; append rows to reports/bench.csv.

Target: the default `synth` entry of config.yaml (about 11k images) generates in well
under a minute on 2 cores. Run from the repository root:

    python benchmarks/bench_synth.py [--processes N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

from hwbench import synth
from hwbench.report import append_bench_rows

ROOT = Path(__file__).resolve().parents[1]
BENCH_CSV = ROOT / "reports" / "bench.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    params = synth.generator_params(config["synth"], "synth")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = synth.generate(params, tmp, processes=args.processes, progress=False)
        seconds = time.perf_counter() - start
    note = f"{len(manifest)} images, {args.processes} processes, config.yaml synth.synth"
    append_bench_rows(
        BENCH_CSV,
        [
            dict(
                benchmark="synth_generate",
                metric="wall",
                value=round(seconds, 2),
                unit="s",
                kind="measured",
                note=note,
            ),
            dict(
                benchmark="synth_generate",
                metric="throughput",
                value=round(len(manifest) / seconds, 1),
                unit="images/s",
                kind="measured",
                note=note,
            ),
        ],
    )
    print(f"synth: {len(manifest)} images in {seconds:.1f} s ({len(manifest) / seconds:.0f}/s)")


if __name__ == "__main__":
    main()
