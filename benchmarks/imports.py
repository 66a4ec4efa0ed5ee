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

The same split is also measured in CPU seconds inside one interpreter per round
(``time.process_time`` around ``import torch``, then around the hwbench import), which
a loaded machine disturbs far less than wall-clock time: the verdict is taken on it.

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
    # `python -c` puts the working directory first on sys.path: run in ``root``, so
    # that the import comes from that checkout and no other.
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True)
    return time.perf_counter() - start


CPU_SPLIT = (
    "import time; t0 = time.process_time(); import torch; t1 = time.process_time(); "
    f"{ENGINE}; t2 = time.process_time(); print(t1 - t0, t2 - t1)"
)


def cpu_split(root: Path) -> tuple[float, float]:
    """CPU seconds of ``import torch`` and of the hwbench import after it, in one
    fresh interpreter run in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", CPU_SPLIT], env=env, cwd=root, check=True, capture_output=True
    )
    torch_s, hwbench_s = (float(v) for v in out.stdout.split())
    return torch_s, hwbench_s


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
    for _ in range(rounds):
        for key, root in [("cpu", ROOT)] + ([("cpu_compared", compare)] if compare else []):
            torch_s, hwbench_s = cpu_split(root)
            seconds.setdefault(f"{key}_torch", []).append(torch_s)
            seconds.setdefault(f"{key}_hwbench", []).append(hwbench_s)
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
    print(f"{args.rounds} rounds, median seconds, load average {load:.2f} at the start")
    for name, value in median.items():
        print(f"  {name:16s} {value:.3f} s")
    print(f"torch's import {torch_s:.3f} s; hwbench's share {share:.3f} s")
    print(f"ratio {ratio:.3f} (wall clock: noisy on a loaded machine)")
    cpu_ratio = median["cpu_hwbench"] / median["cpu_torch"]
    verdict = "meets" if cpu_ratio <= TARGET else "MISSES"
    print(
        f"CPU seconds: torch {median['cpu_torch']:.3f}, hwbench after it "
        f"{median['cpu_hwbench']:.3f}, ratio {cpu_ratio:.3f} ({verdict} <= {TARGET})"
    )
    rows = [
        ("torch import", torch_s, "s", ""),
        ("hwbench share of the engine import", share, "s", ""),
        ("hwbench share / torch import", ratio, "ratio", ""),
        ("torch import, CPU", median["cpu_torch"], "s", ""),
        ("hwbench import after torch, CPU", median["cpu_hwbench"], "s", ""),
        ("hwbench / torch import, CPU", cpu_ratio, "ratio", f"<= {TARGET}"),
    ]
    if args.compare is not None:
        before = median["engine_compared"] - median["torch"]
        print(f"hwbench's share from {args.compare}: {before:.3f} s (ratio {before / torch_s:.3f})")
        rows.append((f"hwbench share, {args.compare}", before, "s", ""))
        cpu_before = median["cpu_compared_hwbench"] / median["cpu_compared_torch"]
        print(
            f"CPU seconds from {args.compare}: hwbench after torch "
            f"{median['cpu_compared_hwbench']:.3f}, ratio {cpu_before:.3f}"
        )
        rows.append((f"hwbench import after torch, CPU, {args.compare}",
                     median["cpu_compared_hwbench"], "s", ""))  # fmt: skip
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
