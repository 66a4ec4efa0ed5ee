"""Speed of the writer-adaptation online loop on a workload of NIST's shape.

The paper's NIST evaluation: 200 application writers, 81,505 application images
(about 407 per writer), 62 classes, 256 features, 10 resamples of a 90/10
adaptation/test split, so about 81.5k test images scored and 815k images passed
through the loop in all. The features, CNN predictions (about 87% right, with
writer-specific confusions like the paper's base CNN) and writing styles are random
but shaped like the real ones. Prints images/s and the projected time of the full
NIST run, and appends rows to reports/bench.csv.

    python benchmarks/adaptation.py                  # full NIST shape, all cores
    python benchmarks/adaptation.py --writers 20     # a tenth, projected to 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwbench.report import append_bench_rows  # noqa: E402
from hwbench.studies.adaptation import loop as ad  # noqa: E402

NIST_WRITERS, NIST_APP_IMAGES, NIST_CLASSES = 200, 81505, 62


def workload(writers: int, per_writer: int, classes: int, dim: int, resamples: int, seed: int):
    """Random features/predictions/styles and an adaptation split of the given shape."""
    rng = np.random.default_rng(seed)
    n_styles = 30
    centroids = rng.normal(size=(classes * n_styles, dim)).astype(np.float32)
    owners = np.repeat(np.arange(classes), n_styles)
    n = writers * per_writer
    writer = np.repeat(np.arange(writers), per_writer)
    label = rng.integers(classes, size=n)
    # Each writer reads a few classes as another one (the per-writer confusions adaptation
    # can learn), plus unstructured errors: about 13% wrong in all.
    confuse = rng.integers(classes, size=(writers, classes))
    wrong = rng.random(n) < 0.13
    structured = rng.random(n) < 0.6
    pred = np.where(
        wrong,
        np.where(structured, confuse[writer, label], rng.integers(classes, size=n)),
        label,
    )
    style = owners.size // classes * label + rng.integers(n_styles, size=n)
    features = centroids[style] + rng.normal(scale=0.5, size=(n, dim)).astype(np.float32)
    app = ad.AppSet(
        index=np.arange(n),
        features=features.astype(np.float32),
        pred=pred,
        label=label,
        writer=np.array([f"w{w:04d}" for w in writer]),
        style=style,
    )
    rows = []
    for r in range(resamples):
        is_test = np.zeros(n, bool)
        for w in range(writers):
            idx = np.flatnonzero(writer == w)
            is_test[rng.choice(idx, size=max(1, round(0.1 * len(idx))), replace=False)] = True
        rows.append(
            pd.DataFrame(
                {
                    "index": np.arange(n),
                    "split": np.where(is_test, "test", "adaptation"),
                    "resample": r,
                }
            )
        )
    return app, centroids, pd.concat(rows, ignore_index=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=NIST_WRITERS)
    parser.add_argument("--resamples", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="processes, 0 = all cores")
    parser.add_argument("--weights", choices=ad.KNN_WEIGHTS, default="uniform")
    parser.add_argument("--out", default="reports/bench.csv")
    args = parser.parse_args(argv)

    per_writer = round(NIST_APP_IMAGES / NIST_WRITERS)
    app, centroids, split = workload(args.writers, per_writer, NIST_CLASSES, 256, args.resamples, 0)
    workers = args.workers or os.cpu_count() or 1
    start = time.perf_counter()
    records = ad.run_adaptation(
        app, centroids, split, num_classes=NIST_CLASSES, weights=args.weights, workers=workers
    )
    wall = time.perf_counter() - start
    processed = len(split)  # every image passes the loop once per resample
    scored = len(records)
    scale = NIST_WRITERS / args.writers * 10 / args.resamples
    projected = wall * scale
    print(
        f"{args.writers} writers x {args.resamples} resamples, {workers} workers: "
        f"{processed} images through the loop, {scored} test images scored in {wall:.1f} s"
    )
    print(
        f"  {processed / wall:,.0f} images/s through the loop, {scored / wall:,.0f} test images/s"
    )
    print(f"  projected NIST run (200 writers, 10 resamples): {projected / 60:.1f} min")
    note = (
        f"{args.writers} writers x {args.resamples} resamples, {workers} workers, "
        f"{args.weights}; load {os.getloadavg()[0]:.1f}"
    )
    rows = [
        ("loop_images_per_s", processed / wall, "images/s", "measured"),
        ("test_images_per_s", scored / wall, "images/s", "measured"),
        # the measured wall time scaled linearly to 200 writers x 10 resamples
        ("projected_nist_time", projected, "s", "projected"),
    ]
    append_bench_rows(
        Path(args.out),
        [
            dict(benchmark="adaptation", metric=m, value=v, unit=u, kind=k, note=note)
            for m, v, u, k in rows
        ],
    )


if __name__ == "__main__":
    main()
