"""What a training job pays to start: the import of the engine and data modules
against torch's own import, in fresh interpreters.

Each round starts, in a rotated order, ``python -c pass`` (the interpreter),
``python -c "import torch"`` and ``python -c "import hwbench.engine, hwbench.data"``
(and, with ``--compare DIR``, the same import from another checkout, e.g. main
before a change), each timed by ``time.perf_counter`` around the subprocess. Per arm
the median over the rounds is taken;

- torch's import = torch - interpreter,
- hwbench's share = engine - torch (what hwbench adds on top of torch),
- the ratio = hwbench's share / torch's import. Target: <= 0.35 (issue #28).

Appends the medians and the ratio to reports/bench.csv.

    python benchmarks/imports.py --rounds 9
    python benchmarks/imports.py --compare /work/main --no-save
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = ROOT / "reports" / "bench.csv"
TARGET = 0.35
ENGINE = "import hwbench.engine, hwbench.data"


def timed(code: str, root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def measure(rounds: int, compare: Path | None) -> dict[str, float]:
    arms = {"python": ("pass", ROOT), "torch": ("import torch", ROOT), "engine": (ENGINE, ROOT)}
    if compare is not None:
        arms["engine_compared"] = (ENGINE, compare)
    names = list(arms)
    for name in names:  # warm the page cache and bytecode caches, untimed
        timed(*arms[name])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds[name].append(timed(*arms[name]))
    return {name: statistics.median(values) for name, values in seconds.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another checkout to time the import of")
    parser.add_argument("--no-save", action="store_true", help="don't append to bench.csv")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    median = measure(args.rounds, args.compare)
    torch_s = median["torch"] - median["python"]
    share = median["engine"] - median["torch"]
    ratio = share / torch_s
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"{args.rounds} rounds, median seconds, load average {load:.2f} at the start")
    for name, value in median.items():
        print(f"  {name:16s} {value:.3f} s")
    print(f"torch's import {torch_s:.3f} s; hwbench's share {share:.3f} s")
    print(f"ratio {ratio:.3f} ({verdict} <= {TARGET})")
    rows = [
        ("torch import", torch_s, "s", ""),
        ("hwbench share of the engine import", share, "s", ""),
        ("hwbench share / torch import", ratio, "ratio", f"<= {TARGET}"),
    ]
    if args.compare is not None:
        before = median["engine_compared"] - median["torch"]
        print(f"hwbench's share from {args.compare}: {before:.3f} s (ratio {before / torch_s:.3f})")
        rows.append((f"hwbench share, {args.compare}", before, "s", ""))
    if not args.no_save:
        note = f"{args.rounds} rounds, medians of fresh interpreters; load {load:.2f}"
        append_bench_rows(
            BENCH_CSV,
            [
                dict(benchmark="imports", metric=m, value=round(v, 4), unit=u, kind="measured")
                | dict(target=t, note=note)
                for m, v, u, t in rows
            ],
        )
        print(f"appended to {BENCH_CSV}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
