"""Time hwbench.preprocess.preprocess_files against naive per-image Pillow code.

Writes (or reuses) 20k NIST-like 128 x 128 black-on-white PNGs in a temp folder and
preprocesses them three ways, each timed by the wall clock:

- hwbench: ``preprocess_files`` with ``--workers`` processes (0 = one per core);
- naive, 1 process: a plain per-image Pillow function doing the same steps;
- naive, pool: the same function over a ``multiprocessing.Pool`` of the same size.

After one untimed warm-up pass (page cache, imports), ``--repeats`` rounds run the
three in turn (their order rotated); per way the median images/s and its range are
printed, and the speed-ups are medians of the per-round ratios. Also printed: the
CPU time per image and how far apart the outputs are. Every number is measured;
rows go to reports/bench.csv with kind=measured. Target: >= 4x the naive single
process on 2 cores. Run from the repository root:

    python benchmarks/preprocess.py [--n 20000] [--workers 0] [--repeats 3] [--folder DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFilter, ImageOps

from hwbench.preprocess import INK_THRESHOLD, _n_workers, preprocess_files
from hwbench.report import append_bench_rows

ROOT = Path(__file__).resolve().parents[1]
BENCH_CSV = ROOT / "reports" / "bench.csv"


def stroke_image(rng: np.random.Generator, side: int = 128) -> np.ndarray:
    """A random handwriting-like scribble: black strokes on white."""
    img = np.full((side, side), 255, np.uint8)
    for _ in range(rng.integers(1, 4)):
        pts = rng.integers(side // 6, side - side // 6, size=(rng.integers(3, 7), 2))
        cv2.polylines(img, [pts.astype(np.int32)], False, 0, int(rng.integers(3, 9)))
    return img


def write_pngs(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` bilevel (1-bit, like NIST) PNGs made by shifting a few random scribbles."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"{i:06d}.png") for i in range(n)]
    if all(os.path.exists(p) for p in paths):
        return paths
    rng = np.random.default_rng(seed)
    bases = [stroke_image(rng) for _ in range(64)]
    for i, path in enumerate(paths):
        img = np.roll(bases[i % len(bases)], rng.integers(-10, 11, size=2), axis=(0, 1))
        cv2.imwrite(path, img, [cv2.IMWRITE_PNG_BILEVEL, 1])
    return paths


def naive_pillow(path: str, sigma: float = 1.0, border: int = 2, size: int = 28) -> np.ndarray:
    """The same steps, one image at a time, with Pillow only (the obvious way)."""
    im = ImageOps.invert(Image.open(path).convert("L"))
    bbox = im.point(lambda v: 255 if v > INK_THRESHOLD else 0).getbbox()
    out = np.zeros((size, size), np.uint8)
    if bbox is None:
        return out
    x0, y0, x1, y1 = bbox
    crop = im.crop((x0 - 1, y0 - 1, x1 + 1, y1 + 1)).filter(ImageFilter.GaussianBlur(sigma))
    side = max(crop.size)
    square = Image.new("L", (side, side))
    square.paste(crop, ((side - crop.size[0]) // 2, (side - crop.size[1]) // 2))
    inner = size - 2 * border
    small = np.asarray(square.resize((inner, inner), Image.Resampling.BICUBIC), np.float32)
    if small.max() > 0:
        out[border : border + inner, border : border + inner] = np.round(
            small * (255.0 / small.max())
        )
    return out


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the pools' workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def naive_pool(paths: list[str], workers: int) -> np.ndarray:
    """The naive function over a process pool: the obvious way to use every core."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return np.stack(pool.map(naive_pillow, paths))


def ours(paths: list[str], workers: int) -> np.ndarray:
    images, failed = preprocess_files(paths, workers=workers, progress=False)
    if failed or len(images) != len(paths):
        raise SystemExit(f"hwbench failed on {len(failed)} of the benchmark's PNGs: {failed[:3]}")
    return images


def timed(fn) -> tuple[np.ndarray, float, float]:
    """(result, wall seconds, CPU seconds of this process and its children)."""
    start, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - start, cpu_seconds() - cpu


def median_range(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="number of PNGs")
    parser.add_argument("--workers", type=int, default=0, help="processes, 0 = all cores")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--folder", type=Path, help="where to write/reuse the PNGs")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.gettempdir()) / f"hwbench_bench_pngs_{args.n}"
    paths = write_pngs(folder, args.n)
    workers = _n_workers(args.workers)
    ways = {
        "hwbench": lambda: ours(paths, workers),
        "naive_1_process": lambda: np.stack([naive_pillow(p) for p in paths]),
        f"naive_pool_{workers}": lambda: naive_pool(paths, workers),
    }
    load = os.getloadavg()[0]
    ours(paths[:500], 1)  # warm-up: page cache, imports, lazy initialisation
    naive_pillow(paths[0])
    outputs, wall, cpu = {}, {w: [] for w in ways}, {w: [] for w in ways}
    names = list(ways)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            outputs[name], seconds, cpu_s = timed(ways[name])
            wall[name].append(seconds)
            cpu[name].append(cpu_s)
        line = ", ".join(f"{w} {v[-1]:.1f} s" for w, v in wall.items())
        print(f"  round {r + 1}/{args.repeats}: {line}", flush=True)
    load_after = os.getloadavg()[0]

    n = len(paths)
    diff = np.abs(outputs["hwbench"].astype(np.int16) - outputs["naive_1_process"])
    mad, p99 = float(diff.mean()), float(np.percentile(diff, 99))
    pool_name = names[2]
    print(f"{n} PNGs 128x128 bilevel in {folder}; {workers} processes where parallel")
    print(f"load average (1 min) before {load:.2f}, after {load_after:.2f}")
    rows = []
    for name in names:
        rate, lo, hi = median_range([n / t for t in wall[name]])
        us = 1e6 * statistics.median(cpu[name]) / n
        print(f"  {name:18s} {rate:8.0f} images/s [{lo:.0f}-{hi:.0f}], {us:6.1f} CPU-us/image")
        rows += [
            (f"{name}_images_per_s", rate, "images/s", "", f"range {lo:.0f}-{hi:.0f}"),
            (f"{name}_cpu_per_image", us, "us", "", ""),
        ]
    for other, target in (("naive_1_process", ">= 4"), (pool_name, "")):
        pairs = zip(wall["hwbench"], wall[other], strict=True)
        ratio, lo, hi = median_range([theirs / mine for mine, theirs in pairs])
        print(f"  hwbench / {other}: {ratio:.2f}x [{lo:.2f}-{hi:.2f}] (median of pairs)")
        rows.append((f"speedup_over_{other}", ratio, "x", target, f"range {lo:.2f}-{hi:.2f}"))
    print("  target: >= 4x the naive single process on 2 cores")
    print(f"mean |hwbench - naive| = {mad:.3f} grey levels, 99th percentile {p99:.0f}")
    rows.append(("mean_abs_diff", mad, "grey levels", "", ""))
    note = (
        f"{n} bilevel 128px PNGs, {workers} processes, median of {args.repeats} rounds, "
        f"load {load:.2f} before / {load_after:.2f} after"
    )
    append_bench_rows(
        BENCH_CSV,
        [
            dict(benchmark="preprocess_files", metric=m, value=round(v, 3), unit=u)
            | dict(kind="measured", target=t, note=f"{extra}; {note}" if extra else note)
            for m, v, u, t, extra in rows
        ],
    )


if __name__ == "__main__":
    main()
