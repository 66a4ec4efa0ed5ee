"""Issue 14 items 1 and 4: odd images, huge images and dead workers in preprocessing."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import tracemalloc

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hwbench import preprocess as pp
from hwbench.store import load_processed


def _manifest(folder, images: dict[str, np.ndarray]):
    rows = []
    for i, (name, img) in enumerate(images.items()):
        Image.fromarray(img).save(folder / name)
        rows.append([name, i % 2, str(i % 2), "latin", "w1", "", "train"])
    frame = pd.DataFrame(rows, columns=pp.MANIFEST_COLUMNS)
    frame.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def _glyph(side=64) -> np.ndarray:
    img = np.full((side, side), 255, np.uint8)
    img[10:50, 20:30] = 0
    return img


def test_one_pixel_png_does_not_stop_a_skip_run(tmp_path):
    # item 1: cv2.compare raised cv2.error on a 1x1 image, which on_error: skip did not
    # catch; since issue 25 it is a degenerate image, skipped and named
    manifest = _manifest(
        tmp_path, {"ok.png": _glyph(), "dot.png": np.zeros((1, 1), np.uint8), "ok2.png": _glyph()}
    )
    summary = pp.preprocess_manifest(
        manifest, tmp_path / "out", on_error="skip", workers=1, progress=False
    )
    assert summary["images"] == 2 and summary["skipped"] == [str(tmp_path / "dot.png")]
    data = load_processed(tmp_path / "out")
    assert data.images[0].max() == 255 and data.images[1].max() == 255


DEGENERATE = {
    "one.png": np.zeros((1, 1), np.uint8),
    "two.png": np.array([[0, 255], [255, 0]], np.uint8),
    "thin.png": np.zeros((40, 7), np.uint8),  # under the stated minimum side of 8
    "blank.png": np.full((64, 64), 255, np.uint8),
    "grey.png": np.full((64, 64), 120, np.uint8),
}


def test_degenerate_images_are_skipped_and_named(tmp_path, caplog):
    # issue 25 item 6: 1x1, 2x2, too thin, blank and one-grey-level PNGs were
    # preprocessed into 28x28 images with on_error either skip or stop
    images = {"ok.png": _glyph()} | DEGENERATE | {"ok2.png": _glyph()}
    manifest = _manifest(tmp_path, images)
    with caplog.at_level(logging.WARNING, logger="hwbench.preprocess"):
        summary = pp.preprocess_manifest(
            manifest, tmp_path / "out", on_error="skip", workers=1, progress=False
        )
    assert summary["images"] == 2
    assert summary["skipped"] == [str(tmp_path / name) for name in DEGENERATE]
    for name in ("one.png", "two.png", "thin.png"):
        assert f"{name}: degenerate:" in caplog.text and f"minimum of {pp.MIN_SIDE}" in caplog.text
    for name in ("blank.png", "grey.png"):
        assert f"{tmp_path / name}: degenerate: no ink" in caplog.text
    meta = load_processed(tmp_path / "out").meta
    assert (
        len(meta) == 2 and (load_processed(tmp_path / "out").images.max(axis=(1, 2)) == 255).all()
    )


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_image_stops_a_stop_run(tmp_path, name):
    manifest = _manifest(tmp_path, {"ok.png": _glyph(), name: DEGENERATE[name]})
    with pytest.raises(pp.PreprocessError, match=rf"{name}: degenerate: .*on_error: skip"):
        pp.preprocess_manifest(manifest, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "images.npy").exists()


def test_smallest_accepted_image_is_processed(tmp_path):
    assert pp.MIN_SIDE == 8  # the minimum docs/preprocess.md states
    small = np.full((8, 8), 255, np.uint8)
    small[2:6, 3:5] = 0
    images, failed = pp.preprocess_files(
        [_manifest(tmp_path, {"s.png": small}).parent / "s.png"], workers=1, progress=False
    )
    assert failed == [] and images.shape == (1, 28, 28) and images.max() == 255


def test_opencv_error_is_skipped_and_named(tmp_path, monkeypatch, caplog):
    # item 1: any cv2.error on one image is that image's failure, named in the log
    manifest = _manifest(tmp_path, {"a.png": _glyph(), "b.png": _glyph(), "c.png": _glyph()})
    real = pp._process_one

    def flaky(img, **opts):
        if img.shape[1] == 64 and img[0, 0] == 255 and flaky.calls == 1:
            flaky.calls += 1
            raise cv2.error("synthetic OpenCV failure")
        flaky.calls += 1
        return real(img, **opts)

    flaky.calls = 0
    monkeypatch.setattr(pp, "_process_one", flaky)
    with caplog.at_level(logging.WARNING, logger="hwbench.preprocess"):
        summary = pp.preprocess_manifest(
            manifest, tmp_path / "out", on_error="skip", workers=1, progress=False
        )
    assert summary["images"] == 2 and summary["skipped"] == [str(tmp_path / "b.png")]
    assert "b.png: error: synthetic OpenCV failure" in caplog.text
    flaky.calls = 0
    with pytest.raises(pp.PreprocessError, match=r"b\.png: error: synthetic"):
        pp.preprocess_manifest(manifest, tmp_path / "out2", workers=1, progress=False)


def _clear_operator_cache():
    for name in ("_cached_axis_operator", "_axis_operator"):
        getattr(getattr(pp, name), "cache_clear", lambda: None)()


def test_axis_operator_memory_is_linear_in_the_crop():
    # item 4: the blur was a dense n x n matrix (0.9 GiB at 6000 px); now inner x n
    n = 5000
    _clear_operator_cache()
    tracemalloc.start()
    op = pp._axis_operator(n, n, 24, 1.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert op.shape == (24, n)
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_banded_operator_equals_the_dense_blur():
    # the cheap path must give the same numbers as the n x n matrix it replaces
    n, side, inner, sigma = 37, 40, 24, 1.0
    radius = 4
    kernel = cv2.getGaussianKernel(2 * radius + 1, sigma, cv2.CV_64F).ravel()
    offsets = np.arange(n)[:, None] - np.arange(n)[None, :]
    blur = np.where(np.abs(offsets) <= radius, kernel[np.clip(offsets + radius, 0, 8)], 0.0)
    dense = pp.bicubic_weights(side, inner)[:, 1 : 1 + n] @ blur
    np.testing.assert_allclose(pp._build_axis_operator(n, side, inner, sigma), dense, atol=1e-6)


def test_large_crop_peak_memory_is_bounded():
    side = 4000
    ink = np.zeros((side, side), np.uint8)
    ink[100:-100, 100:-100:7] = 255
    _clear_operator_cache()
    tracemalloc.start()
    out = pp.emnist_style(ink)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.max() == 255
    # the image is 16 MB; one float32 band is 16 MB; the old dense path took > 500 MB
    assert peak < 80 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_max_pixels_guard_names_the_file_and_the_key(tmp_path):
    manifest = _manifest(tmp_path, {"big.png": np.full((3000, 2000), 255, np.uint8)})
    with pytest.raises(pp.PreprocessError, match=r"big\.png: 2000 x 3000 .*preprocess\.max_pixels"):
        pp.preprocess_manifest(
            manifest, tmp_path / "out", workers=1, progress=False, max_pixels=1_000_000
        )


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from PIL import Image
    from hwbench import preprocess as pp

    def killer(args):
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does

    folder = sys.argv[1]
    paths = []
    for i in range(40):
        path = f"{folder}/{i}.png"
        Image.fromarray(np.full((8, 8), 255, np.uint8)).save(path)
        paths.append(path)
    pp._file_chunk = killer
    try:
        pp.preprocess_files(paths, workers=2, progress=False)
    except pp.PreprocessError as exc:
        print("ERROR", exc)
        sys.exit(3)
    """
)


AFTER_OPENCV_THREADS = textwrap.dedent(
    """
    import sys
    import time
    import cv2
    import numpy as np
    from hwbench import preprocess as pp

    # the parent starts OpenCV's thread pool (a large image is thresholded in parallel)
    pp.emnist_style(np.full((4000, 4000), 255, np.uint8))
    time.sleep(0.5)  # its threads go from spinning to waiting on their condition variable
    paths = []
    for i in range(40):
        path = f"{sys.argv[1]}/{i}.png"
        img = np.full((64, 64), 255, np.uint8)
        img[10:50, 20 + i % 10 : 30 + i % 10] = 0
        cv2.imwrite(path, img)
        paths.append(path)
    images, failed = pp.preprocess_files(paths, workers=2, progress=False)
    print("OK", len(images), len(failed), cv2.getNumThreads() > 0)
    """
)


def test_workers_do_not_hang_on_the_parents_opencv_threads(tmp_path):
    # forked workers inherited the parent's OpenCV thread pool and waited forever on it
    try:
        proc = subprocess.run(
            [sys.executable, "-c", AFTER_OPENCV_THREADS, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("preprocess_files hung: workers forked from a parent with OpenCV threads")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["OK", "40", "0", "True"]


def test_dead_worker_fails_the_job_instead_of_hanging(tmp_path):
    # item 4: multiprocessing.Pool waited forever for a SIGKILLed worker
    try:
        proc = subprocess.run(
            [sys.executable, "-c", KILLER, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("preprocess_files hung after a worker was killed")
    assert proc.returncode == 3, proc.stderr
    assert "worker process died" in proc.stdout and "0.png" in proc.stdout
    assert "preprocess.workers" in proc.stdout


@pytest.mark.parametrize("name", ["../outside.png", "/etc/hostname", "a/../../b.png"])
def test_manifest_may_not_reach_outside_its_folder(tmp_path, name):
    folder = tmp_path / "raw"
    folder.mkdir()
    manifest = _manifest(folder, {"ok.png": _glyph()})
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    frame.loc[len(frame)] = [name, "1", "1", "latin", "w1", "", "train"]
    frame.to_csv(manifest, index=False)
    with pytest.raises(Exception, match=r"manifest\.csv: row 3 names file .*relative"):
        pp.preprocess_manifest(manifest, tmp_path / "out", workers=1, progress=False)


def test_full_disk_for_the_store_fails_before_the_memory_mapped_write(tmp_path, monkeypatch):
    # issue 25 item 2: a memory-mapped images.npy on a full disk would die of SIGBUS
    import errno
    import os

    from hwbench.store import StorageError

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    manifest = _manifest(tmp_path, {"a.png": _glyph(), "b.png": _glyph()})
    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "out"
    with pytest.raises(StorageError) as caught:
        pp.preprocess_manifest(manifest, out, workers=1, progress=False)
    assert str(caught.value).startswith(f"{out / 'images.npy'}: could not be written: the disk")
    assert "MiB free" in str(caught.value)
    assert not out.exists() or list(out.iterdir()) == []
