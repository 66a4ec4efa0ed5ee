"""Time the real-dataset plumbing on local fixtures; append rows to reports/bench.csv.

* download: a random file served from 127.0.0.1, fetched, hashed (MD5 + SHA-256)
  and verified: MB/s through the whole fetch path.
* nist_manifest: an SD19-like by_write.zip of N 128x128 PNGs plus md5 logs,
  joined, checked and extracted: images/s, and the projected time for the
  814,255 images of the real by_write.zip.

Run from the repository root:  python benchmarks/bench_datasets.py [--mb 64] [--images 5000]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from hwbench.datasets import registry
from hwbench.datasets.download import fetch
from hwbench.datasets.nist import build_nist_manifest
from hwbench.report import append_bench_rows
from tests._datasets_support import FixtureServer

ROOT = Path(__file__).resolve().parents[1]
BENCH_CSV = ROOT / "reports" / "bench.csv"
NIST_IMAGES = 814255


def bench_download(mb: int) -> float:
    data = np.random.default_rng(0).integers(0, 256, mb << 20, dtype=np.uint8).tobytes()
    data = b"PK\x03\x04" + data[4:]  # looks like a zip to the format check
    server = FixtureServer().start()
    try:
        server.files["/emnist/gzip.zip"] = data
        entry = dataclasses.replace(
            registry.EMNIST.files[0],
            urls=(server.url("/emnist/gzip.zip"),),
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            md5=hashlib.md5(data).hexdigest(),
        )
        spec = registry.EMNIST.with_files([entry])
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            fetch(spec, "gzip.zip", Path(tmp), progress=None)
            return time.perf_counter() - start
    finally:
        server.stop()


def nist_like(n: int, folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    buf, write_log, class_log = io.BytesIO(), [], []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            img = np.full((128, 128), 255, np.uint8)
            y, x = rng.integers(10, 90, 2)
            img[y : y + 30, x : x + rng.integers(3, 30)] = 0
            png = io.BytesIO()
            Image.fromarray(img).convert("1").save(png, format="PNG")
            data = png.getvalue()
            writer = f"f{i // 200:04d}_{i % 50:02d}"
            name = f"by_write/hsf_{i % 4}/{writer}/d{writer[1:]}/d{writer[1:]}_{i:05d}.png"
            zf.writestr(name, data)
            md5 = hashlib.md5(data).hexdigest()
            write_log.append(f"{md5} /x/{name}")
            class_log.append(f"{md5} /x/by_class/{30 + i % 10}/hsf_{i % 4}/hsf_{i % 4}_{i:05d}.png")
    paths = {
        "by_write.zip": folder / "by_write.zip",
        "by_write_md5.log": folder / "by_write_md5.log",
        "by_class_md5.log": folder / "by_class_md5.log",
    }
    paths["by_write.zip"].write_bytes(buf.getvalue())
    paths["by_write_md5.log"].write_text("\n".join(write_log) + "\n")
    paths["by_class_md5.log"].write_text("\n".join(class_log) + "\n")
    return paths


def bench_nist(n: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        files = nist_like(n, Path(tmp))
        start = time.perf_counter()
        frame = build_nist_manifest(files, Path(tmp) / "raw")
        return time.perf_counter() - start, len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    seconds = bench_download(args.mb)
    nist_seconds, count = bench_nist(args.images)
    rate = count / nist_seconds
    rows = [
        dict(
            benchmark="dataset_download",
            metric="throughput",
            value=round(args.mb / seconds, 1),
            unit="MB/s",
            kind="measured",
            note=f"{args.mb} MB from 127.0.0.1, streamed + md5 + sha256 verified",
        ),
        dict(
            benchmark="nist_manifest",
            metric="throughput",
            value=round(rate, 1),
            unit="images/s",
            kind="measured",
            note=f"{count} synthetic SD19 PNGs: md5 join, log check, extract",
        ),
        dict(
            benchmark="nist_manifest",
            metric="projected_full",
            value=round(NIST_IMAGES / rate / 60, 1),
            unit="min",
            kind="projected",
            note=f"{NIST_IMAGES} images at the measured rate",
        ),
    ]
    append_bench_rows(BENCH_CSV, rows)
    for row in rows:
        print(f"{row['benchmark']:18s} {row['metric']:15s} {row['value']:>10} {row['unit']}")


if __name__ == "__main__":
    main()
