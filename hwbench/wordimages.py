"""Height normalisation of handwritten word images (not the 28 x 28 character preprocessing).

Word images (IAM, IFN/ENIT) vary in width far more than characters do, so they
are not squared: each image becomes white ink on black (:func:`hwbench.preprocess.to_ink`),
is cropped to its ink plus a small margin, scaled to ``height`` rows with its
aspect ratio kept (shrunk further if it would be wider than ``max_width``) and
zero-padded on the right and bottom into one ``height`` x ``max_width`` array, so
a whole dataset is one uint8 N x height x max_width array in the processed format.
The OneModel paper (Sec. 3.4) scales word images to a height of 120 with the
aspect ratio kept and zero-pads them into its 600-wide canvas; with ``binarize``
strokes become 255 and paper 0, as the paper's "1 for the stroke and 0 for the
background" (Otsu's threshold per image).

Decoding and resizing are OpenCV (INTER_AREA when shrinking, which averages and
so does not alias thin strokes; INTER_LINEAR when enlarging). Files are spread
over worker processes by the pool of :mod:`hwbench.preprocess`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import cv2
import numpy as np

# The private pool helpers are shared, not copied; preprocess.py stays untouched so
# that the 28 x 28 preprocess jobs (whose code input it is) never rerun for this module.
from hwbench.geometry import scaled_size
from hwbench.preprocess import INK_THRESHOLD, PreprocessError, to_ink
from hwbench.preprocess import _chunks as split_chunks
from hwbench.preprocess import _n_workers as n_workers
from hwbench.preprocess import _run_chunks as run_chunks

log = logging.getLogger("hwbench.wordimages")

MARGIN = 2  # pixels of paper kept around the ink's bounding box (at the source resolution)


def crop_to_ink(ink: np.ndarray, margin: int = MARGIN) -> np.ndarray:
    """The ink's bounding box plus ``margin`` pixels (the image itself when it has no ink)."""
    x, y, w, h = cv2.boundingRect((ink > INK_THRESHOLD).view(np.uint8))
    if w == 0 or h == 0:
        return ink
    y0, y1 = max(y - margin, 0), min(y + h + margin, ink.shape[0])
    x0, x1 = max(x - margin, 0), min(x + w + margin, ink.shape[1])
    return ink[y0:y1, x0:x1]


def normalize_word(
    img: np.ndarray,
    height: int = 120,
    max_width: int = 600,
    *,
    binarize: bool = True,
    crop: bool = True,
    invert: bool | None = None,
) -> np.ndarray:
    """One decoded word image -> uint8 ``height`` x ``max_width``, white ink on black,
    scaled to ``height`` rows with its aspect ratio kept and zero-padded right/bottom."""
    if height < 1 or max_width < 1:
        raise ValueError(f"height and max_width must be >= 1, got {height} x {max_width}")
    ink = to_ink(img, invert)
    if crop:
        ink = crop_to_ink(ink)
    new_h, new_w = scaled_size(ink.shape[0], ink.shape[1], height, max_width)
    shrink = new_h < ink.shape[0]
    small = cv2.resize(
        ink, (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    if binarize and small.any():
        _, small = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    out = np.zeros((height, max_width), np.uint8)
    out[:new_h, :new_w] = small
    return out


def _read(path: str) -> np.ndarray:
    """Decode one image file (any depth, grey or colour); ValueError when it cannot be."""
    if not os.path.exists(path):
        raise ValueError("file not found")
    if os.path.getsize(path) == 0:
        raise ValueError("empty file (0 bytes)")
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("cannot be decoded (truncated or not an image)")
    return img


def _word_chunk(args) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Worker: decode and normalise files -> (images, [(position, reason)] of failures)."""
    paths, opts = args
    out = np.zeros((len(paths), opts["height"], opts["max_width"]), np.uint8)
    failed = []
    for i, path in enumerate(paths):
        try:
            out[i] = normalize_word(_read(path), **opts)
        except (ValueError, cv2.error) as err:
            failed.append((i, str(err).strip()))
    return out, failed


def normalize_word_files(
    paths: Sequence[str | os.PathLike],
    *,
    height: int = 120,
    max_width: int = 600,
    binarize: bool = True,
    crop: bool = True,
    workers: int = 0,
    on_error: str = "stop",
    progress: bool = True,
    where: str = "",
) -> tuple[np.ndarray, list[int]]:
    """Decode and height-normalise image files over ``workers`` processes (0 = all cores).

    Returns ``(images, failed)``: uint8 N x height x max_width for the files that
    could be read, in input order, and the positions of those that could not.
    ``on_error="stop"`` raises :class:`PreprocessError` naming the first unreadable
    file and ``where`` (the config key that lets it be skipped); ``"skip"`` drops
    such files and logs them.
    """
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    paths = [os.fspath(p) for p in paths]
    opts = {
        "height": int(height),
        "max_width": int(max_width),
        "binarize": bool(binarize),
        "crop": bool(crop),
    }
    workers = n_workers(workers)
    bounds = split_chunks(len(paths), workers)
    tasks = [(paths[a:b], opts) for a, b in bounds]
    images = np.zeros((len(paths), height, max_width), np.uint8)
    failed: list[int] = []
    results = run_chunks(_word_chunk, tasks, workers, [b - a for a, b in bounds], progress, "words")
    for (start, end), (chunk, bad) in zip(bounds, results, strict=True):
        for pos, reason in bad:
            if on_error == "stop":
                results.close()
                raise PreprocessError(
                    f"{paths[start + pos]}: {reason}. Replace the file, or set "
                    f"{where or 'on_error'}: skip to leave such images out (they are then "
                    "listed in the job log)."
                )
            log.warning("skipped %s: %s", paths[start + pos], reason)
            failed.append(start + pos)
        images[start:end] = chunk
    if failed:
        log.warning("skipped %d unreadable image(s)", len(failed))
        images = _compact(images, failed)
    return images, failed


def _compact(images: np.ndarray, failed: list[int]) -> np.ndarray:
    """``images`` without the rows ``failed``, moved up in place: a dataset of several GB
    is not copied (np.delete would hold it twice)."""
    drop = set(failed)
    kept = 0
    for i in range(len(images)):
        if i not in drop:
            if i != kept:
                images[kept] = images[i]
            kept += 1
    return images[:kept]
