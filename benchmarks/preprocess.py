"""Time hwbench.preprocess.preprocess_files against a naive per-image Pillow version.

Writes (or reuses) 20k NIST-like 128 x 128 black-on-white PNGs in a temp folder,
preprocesses them with hwbench (all cores) and with a plain per-image Pillow
loop doing the same steps, prints images/s of both, their ratio and how far
apart their outputs are, and appends rows to reports/bench.csv.
Target: >= 4x on 2 cores. Run from the repository root:

    python benchmarks/preprocess.py [--n 20000] [--workers 0] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
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
    """CPU time of this process and its reaped children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="number of PNGs")
    parser.add_argument("--workers", type=int, default=0, help="hwbench workers, 0 = all cores")
    parser.add_argument("--folder", type=Path, help="where to write/reuse the PNGs")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.gettempdir()) / f"hwbench_bench_pngs_{args.n}"
    paths = write_pngs(folder, args.n)
    workers = _n_workers(args.workers)
    load = os.getloadavg()[0]

    preprocess_files(paths[:200], workers=1, progress=False)  # warm the page cache and imports
    start, cpu = time.perf_counter(), cpu_seconds()
    ours, failed = preprocess_files(paths, workers=workers, progress=False)
    t_ours, cpu_ours = time.perf_counter() - start, cpu_seconds() - cpu
    assert not failed and len(ours) == len(paths)

    start, cpu = time.perf_counter(), cpu_seconds()
    naive = np.stack([naive_pillow(p) for p in paths])
    t_naive, cpu_naive = time.perf_counter() - start, cpu_seconds() - cpu
    load_after = os.getloadavg()[0]

    diff = np.abs(ours.astype(np.int16) - naive.astype(np.int16))
    mad, p99 = float(diff.mean()), float(np.percentile(diff, 99))
    ours_rate, naive_rate = len(paths) / t_ours, len(paths) / t_naive
    ratio = ours_rate / naive_rate
    # CPU time per image is far less sensitive than wall time to other processes
    # sharing the cores; with `workers` cores to itself hwbench would reach
    # workers / cpu-per-image, hence the CPU-based ratio
    us_ours, us_naive = 1e6 * cpu_ours / len(paths), 1e6 * cpu_naive / len(paths)
    cpu_ratio = workers * us_naive / us_ours
    print(f"{len(paths)} PNGs 128x128 bilevel in {folder}")
    print(f"load average (1 min) before {load:.2f}, after {load_after:.2f}, {workers} cores")
    print(
        f"hwbench preprocess_files ({workers} workers): {ours_rate:8.0f} images/s wall, "
        f"{us_ours:6.1f} CPU-us/image"
    )
    print(
        f"naive per-image Pillow (1 process):       {naive_rate:8.0f} images/s wall, "
        f"{us_naive:6.1f} CPU-us/image"
    )
    print(f"wall-clock ratio {ratio:.2f}x (target >= 4x on 2 cores)")
    print(f"CPU-time ratio x {workers} workers: {cpu_ratio:.2f}x (the wall ratio on idle cores)")
    print(f"mean |hwbench - naive| = {mad:.3f} grey levels, 99th percentile {p99:.0f}")
    note = (
        f"{len(paths)} bilevel 128px PNGs, {workers} workers, "
        f"load {load:.2f} before / {load_after:.2f} after"
    )
    rows = [
        ("hwbench_images_per_s", ours_rate, "images/s"),
        ("naive_pillow_images_per_s", naive_rate, "images/s"),
        ("speedup_wall", ratio, "x"),
        ("hwbench_cpu_per_image", us_ours, "us"),
        ("naive_pillow_cpu_per_image", us_naive, "us"),
        ("speedup_cpu_x_workers", cpu_ratio, "x"),
        ("mean_abs_diff", mad, "grey levels"),
    ]
    append_bench_rows(
        BENCH_CSV,
        [
            dict(benchmark="preprocess_files", metric=m, value=round(v, 3), unit=u, note=note)
            for m, v, u in rows
        ],
    )


if __name__ == "__main__":
    main()
