"""EMNIST-style preprocessing: raw character images -> uint8 28 x 28, white ink on black.

The steps follow section 4.2 of the adaptation paper (itself modelled on EMNIST,
Cohen et al. 2017), in this order:

1. :func:`to_ink`: decode to one 8-bit channel, white ink on black.
2. Crop to the ink's bounding box plus a 1 px margin (the paper crops *before*
   blurring, unlike EMNIST).
3. Gaussian blur, sigma 1, with background (zeros) outside the crop.
4. Centre in a square of side max(w, h): the aspect ratio is kept.
5. Resize with antialiased bicubic interpolation into (size - 2 * border) pixels
   and add an empty ``border`` (EMNIST: 2 px, at the output resolution).
6. Rescale intensities so the brightest pixel is 255, as EMNIST does.

Resampling is Pillow's BICUBIC (Keys cubic, a = -0.5) with the kernel widened by
the shrink factor, so it low-passes before sampling, like MATLAB's ``imresize``
that EMNIST used. OpenCV's INTER_CUBIC samples a fixed 4 x 4 neighbourhood and
aliases fine strokes when shrinking 128 px to 28.

Speed: steps 3-5 are linear and separable, so for a crop of h x w pixels they
are one product ``A @ crop @ B.T`` with A (inner x h) and B (inner x w) built
once per geometry and cached: the Gaussian kernel from OpenCV and Pillow's
bicubic resampling weights (:func:`bicubic_weights`, checked against Pillow
itself in the tests). Decoding the PNG is then the largest cost per image.

Memory: A and B are inner x n (the blur is applied to them as a 1-D
convolution, never as an n x n matrix) and the crop is multiplied in bands of
rows, so the working memory beyond the decoded image grows linearly with the
crop's side. The decoded image itself is bounded by ``max_pixels``, checked from
the file's header before decoding (docs/security.md).

Degenerate files: an image file with a side under :data:`MIN_SIDE` pixels, or with
no ink (blank, or a single grey level: nothing above :data:`INK_THRESHOLD` after
inversion), cannot be a handwritten character. :func:`preprocess_files` treats it
like an unreadable file (``on_error``: stop, or skip and name it in the log).
:func:`preprocess_arrays` (arrays a reader decoded itself) turns an image without
ink into an all-zero image and logs how many there were.

Reading: each file is read once; its pixel count is checked from the header
bytes in memory (PNG's IHDR directly, other formats through Pillow) before
OpenCV decodes the same bytes, so the ``max_pixels`` guard costs no second open.

Native size (``native=True``, config ``preprocess.native_size``): step 1 only,
at the images' own size (:func:`native_ink`): no crop, blur, centring, resize or
rescale, e.g. NIST's 128 x 128 scans as the transfer paper uses them. Every
image of a dataset must then have one size. :func:`preprocess_manifest` writes
the images straight into a memory-mapped ``images.npy``, so a dataset larger
than memory (NIST at 128 px: 13 GB) is never held in RAM.
"""

from __future__ import annotations

import collections
import functools
import io
import logging
import math
import multiprocessing
import os
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from hwbench import store

log = logging.getLogger("hwbench.preprocess")

OUTPUT_SIZE = 28
# Inverted pixels at or below this level do not count as ink when finding the
# bounding box: it ignores faint scanner/JPEG noise and anti-aliasing fringes,
# and is irrelevant for binary images such as NIST's.
INK_THRESHOLD = 25
# Images per task sent to a worker process: large enough that per-task IPC and
# scheduling are negligible next to decoding, small enough to balance the load.
MAX_CHUNK = 512
# Default cap on decoded pixels per image (config preprocess.max_pixels): a
# 16-bit RGBA image this large decodes to 200 MB, plus a float32 grey copy.
MAX_PIXELS = 25_000_000
# Crops up to this side keep their resampling operators in the cache; larger
# ones (rare, and each a different size) are built per image so the cache
# cannot grow to gigabytes.
CACHE_MAX_SIDE = 2048
# Rows of the crop converted to float32 at a time in the resampling product.
BAND_ROWS = 1024
# Smallest side, in pixels, of an image file that can hold a handwritten
# character: below it there is nothing to centre and resize (a 1 x 1 or 2 x 2
# "image" is a broken export, not a character). Datasets' raw images are whole
# character boxes, never tight crops, so real ones are far above it.
MIN_SIDE = 8
# Largest bytes per decoded pixel a file can need (uncompressed float32 RGBA):
# a file above max_pixels times this is refused before it is read into memory.
MAX_FILE_BYTES_PER_PIXEL = 16
NO_INK = f"no ink: blank or a single grey level (no pixel above {INK_THRESHOLD} after inversion)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PreprocessError(RuntimeError):
    """An input image could not be read or converted."""


# --------------------------------------------------------------------------- single images


def _to_gray_u8(img: np.ndarray) -> np.ndarray:
    """Any decoded image (bool, uint8/16, float; 1-4 channels) -> uint8 2-D."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif np.issubdtype(img.dtype, np.floating):
        # floats in [0, 1] (skimage/torch style) or already in [0, 255]
        scale = 255.0 if img.size and float(np.nanmax(img)) <= 1.0 else 1.0
        img = np.clip(np.nan_to_num(img) * scale, 0, 255).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected a 2-D image or H x W x 1/3/4 channels, got shape {img.shape}")
    # The mean of the colour channels needs no RGB/BGR convention; ink contrast is
    # what matters for handwriting.
    gray = img[:, :, :3].mean(axis=2, dtype=np.float32)
    if img.shape[2] == 4:  # composite over white paper: transparent = background
        alpha = img[:, :, 3].astype(np.float32) / 255.0
        gray = gray * alpha + 255.0 * (1.0 - alpha)
    return gray.round().astype(np.uint8)


def to_ink(img: np.ndarray, invert: bool | None = None) -> np.ndarray:
    """Any decoded image -> uint8 2-D, white ink on a black (0) background.

    Polarity: with ``invert=None`` the outermost pixel frame decides: characters
    rarely cover half of it, so when most of it is bright (> 127) the image is
    black-on-white and gets inverted. ``invert=True`` / ``False`` forces the
    choice. The frame's median level (when dark, as paper is after inversion) is
    then subtracted, so grey paper becomes 0 (a no-op for clean binary scans).
    Both assume the frame is mostly paper, as it is for character images.
    """
    gray = _to_gray_u8(img)
    if gray.size == 0:
        raise ValueError("empty image (zero pixels)")
    edge = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if invert is None:
        invert = 2 * np.count_nonzero(edge > 127) > edge.size
    if invert:
        gray = cv2.bitwise_not(gray)
        edge = 255 - edge
    background = int(np.partition(edge, edge.size // 2)[edge.size // 2])  # median
    if 0 < background <= 127:  # a bright "background" means a forced wrong polarity
        gray = cv2.subtract(gray, background)  # saturating: stays >= 0
    return gray


def _bicubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys cubic convolution kernel (Pillow's and MATLAB's ``a = -0.5``)."""
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=512)
def bicubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """n_out x n_in matrix resampling a line like Pillow's ``resize(BICUBIC)``.

    A port of Pillow's ``precompute_coeffs`` (libImaging/Resample.c): when
    shrinking, the kernel support grows by the scale factor (antialiasing), and
    each output pixel's weights are normalised to sum to 1.
    """
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    weights = np.zeros((n_out, n_in))
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), n_in)
        k = _bicubic((np.arange(xmin, xmax) - center + 0.5) / filterscale)
        total = k.sum()
        weights[xx, xmin:xmax] = k / total if total else k
    return weights


def _axis_operator(n: int, side: int, inner: int, sigma: float) -> np.ndarray:
    """inner x n float32: blur n crop pixels (zeros beyond), centre them in ``side``, resize."""
    if n <= CACHE_MAX_SIDE:
        return _cached_axis_operator(n, side, inner, sigma)
    return _build_axis_operator(n, side, inner, sigma)


@functools.lru_cache(maxsize=4096)
def _cached_axis_operator(n: int, side: int, inner: int, sigma: float) -> np.ndarray:
    return _build_axis_operator(n, side, inner, sigma)


def _build_axis_operator(n: int, side: int, inner: int, sigma: float) -> np.ndarray:
    top = (side - n) // 2
    op = bicubic_weights(side, inner)[:, top : top + n]
    if sigma > 0:
        # OpenCV's float Gaussian (radius 4 sigma). Blurring then resampling is
        # ``op @ blur`` for the banded n x n blur matrix; that product is each row
        # of op correlated with the kernel, zeros beyond the crop (the background
        # border), so it costs inner x n memory, not n x n.
        radius = max(1, math.ceil(4 * sigma))
        kernel = cv2.getGaussianKernel(2 * radius + 1, sigma, cv2.CV_64F)
        op = cv2.filter2D(
            np.ascontiguousarray(op),
            cv2.CV_64F,
            kernel.T,
            anchor=(radius, 0),
            borderType=cv2.BORDER_CONSTANT,
        )
    return np.ascontiguousarray(op, dtype=np.float32)


def resize_antialiased(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Float32 2-D image -> ``height`` x ``width``, antialiased bicubic (Pillow's BICUBIC)."""
    img = np.asarray(img, np.float32)
    rows = bicubic_weights(img.shape[0], height).astype(np.float32)
    cols = bicubic_weights(img.shape[1], width).astype(np.float32)
    return rows @ img @ cols.T


def emnist_style(
    ink: np.ndarray,
    sigma: float = 1.0,
    border: int = 2,
    size: int = OUTPUT_SIZE,
    rescale: bool = True,
) -> np.ndarray:
    """White-on-black ink image -> uint8 ``size`` x ``size`` (the module steps 2-6).

    An image with no pixel above :data:`INK_THRESHOLD` gives an all-zero image.
    ``rescale=False`` keeps the resized intensities (clipped to 0-255) instead of
    stretching the brightest pixel to 255.
    """
    inner = size - 2 * border
    if inner < 1:
        raise ValueError(f"border {border} leaves no room in a {size} x {size} image")
    ink = np.asarray(ink)
    if ink.ndim != 2:
        raise ValueError(f"emnist_style expects a 2-D ink image, got shape {ink.shape}")
    # cv2.threshold, not cv2.compare: compare takes a 1 x 1 (or 1 x 4) image for a
    # scalar and fails on it; threshold has one array argument
    mask = cv2.threshold(np.ascontiguousarray(ink, np.uint8), INK_THRESHOLD, 255, 0)[1]
    x, y, w, h = cv2.boundingRect(mask)
    out = np.zeros((size, size), np.uint8)
    if w == 0 or h == 0:
        return out
    # The crop is the box plus a 1 px margin: (h + 2) x (w + 2), centred in a square
    # of that crop's longer side. Margin pixels beyond the image are zeros, which
    # contribute nothing, so only the part inside the image is multiplied.
    side = max(h, w) + 2
    rows = _axis_operator(h + 2, side, inner, float(sigma))
    cols = _axis_operator(w + 2, side, inner, float(sigma))
    y0, y1 = max(y - 1, 0), min(y + h + 1, ink.shape[0])
    x0, x1 = max(x - 1, 0), min(x + w + 1, ink.shape[1])
    rows = rows[:, y0 - (y - 1) : y1 - (y - 1)]
    cols = cols[:, x0 - (x - 1) : x1 - (x - 1)]
    small = _banded_product(rows, ink[y0:y1, x0:x1], cols)
    np.maximum(small, 0, out=small)  # bicubic undershoots next to strokes
    if rescale:
        peak = float(small.max())
        if peak <= 0:
            return out
        small *= 255.0 / peak
    small += 0.5
    np.minimum(small, 255, out=small)  # >= 0 already: a saturating cast
    out[border : border + inner, border : border + inner] = small
    return out


def _banded_product(rows: np.ndarray, crop: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rows @ crop @ cols.T`` converting at most BAND_ROWS rows of the crop to float at once."""
    if crop.shape[0] <= BAND_ROWS:  # one band: no accumulator (the common, small case)
        return rows @ (crop.astype(np.float32) @ cols.T)
    small = np.zeros((rows.shape[0], cols.shape[0]), np.float32)
    for start in range(0, crop.shape[0], BAND_ROWS):
        band = crop[start : start + BAND_ROWS].astype(np.float32)
        small += rows[:, start : start + BAND_ROWS] @ (band @ cols.T)
    return small


# --------------------------------------------------------------------------- batches


def native_ink(img: np.ndarray, shape: tuple[int, int], invert: bool | None = None) -> np.ndarray:
    """:func:`to_ink` at the image's own size, which must be ``shape`` (height, width).

    The native-size processing resizes nothing, so an image of another size is an
    error (the caller names its file).
    """
    ink = to_ink(img, invert)
    if ink.shape != tuple(shape):
        raise ValueError(
            f"{ink.shape[1]} x {ink.shape[0]} pixels, but the dataset's first readable image is "
            f"{shape[1]} x {shape[0]}: native-size processing (preprocess.native_size) "
            "resizes nothing, so every image must have one size"
        )
    return ink


def _process_one(
    img, invert, sigma, border, size, rescale, native=False, max_pixels=MAX_PIXELS
) -> tuple[np.ndarray, bool]:
    if native:
        result = native_ink(img, size, invert)
    else:
        result = emnist_style(
            to_ink(img, invert), sigma=sigma, border=border, size=size, rescale=rescale
        )
    return result, not result.any()


def _image_shape(opts: dict) -> tuple[int, int]:
    """Height and width of each output image: ``size`` x ``size``, or native (h, w)."""
    size = opts["size"]
    return tuple(size) if opts["native"] else (size, size)


class _Refused(Exception):
    """One file's failure, with the reason the job log gives."""


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image file's leading bytes, or None when unknown.

    PNG (the format of most raw character datasets) is read from its IHDR chunk,
    which the PNG specification puts first: signature (8 bytes), chunk length (4),
    ``IHDR`` (4), then width and height as big-endian 32-bit integers. Other
    formats go through Pillow's header parsers.
    """
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    # Pillow's own bomb check would raise before telling the size; ours decides.
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(io.BytesIO(data)) as img:  # parses the header only
            return img.size
    except Exception:  # noqa: BLE001 (not a format Pillow knows: OpenCV decides)
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def _size_problem(width: int, height: int, max_pixels: int) -> str | None:
    """Why an image of this size must not be processed: too large, or degenerate."""
    if width * height > max_pixels:
        return (
            f"{width} x {height} = {width * height:,} pixels, more than "
            f"preprocess.max_pixels = {max_pixels:,} (raise it in the config to process "
            "such images; each worker then needs about 10 bytes per pixel)"
        )
    if min(width, height) < MIN_SIDE:
        return (
            f"degenerate: {width} x {height} pixels, a side under the minimum of "
            f"{MIN_SIDE} pixels for a character image"
        )
    return None


def _read_image(path: str, max_pixels: int) -> np.ndarray:
    """Read ``path`` once, check its size from the header, decode it with OpenCV."""
    try:
        with open(path, "rb") as file:
            nbytes = os.fstat(file.fileno()).st_size
            if nbytes > max_pixels * MAX_FILE_BYTES_PER_PIXEL:
                raise _Refused(
                    f"{nbytes:,} bytes, more than any image within preprocess.max_pixels = "
                    f"{max_pixels:,} needs"
                )
            data = file.read()
    except FileNotFoundError:
        raise _Refused("file not found") from None
    except IsADirectoryError:
        raise _Refused("a folder, not an image file") from None
    size = header_size(data)
    if size is not None and (reason := _size_problem(*size, max_pixels)):
        raise _Refused(reason)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise _Refused("cannot be decoded")
    # checked again on the decoded array: a format Pillow could not size
    if img.ndim < 2 or (reason := _size_problem(img.shape[1], img.shape[0], max_pixels)):
        raise _Refused(reason or f"decoded to shape {img.shape}, not an image")
    return img


def _file_chunk(args) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Worker: read and process files -> (images, [(pos, reason)]).

    A failed file's image (unreadable, too large, or degenerate: too small or
    without ink) is left all-zero; the caller drops it.
    """
    paths, opts = args
    out = np.zeros((len(paths), *_image_shape(opts)), np.uint8)
    failed = []
    for i, path in enumerate(paths):
        try:
            img = _read_image(path, opts["max_pixels"])
            out[i], is_empty = _process_one(img, **opts)
            if is_empty:
                raise _Refused(f"degenerate: {NO_INK}")
        except _Refused as why:
            failed.append((i, str(why)))
        except (ValueError, cv2.error) as err:
            # OpenCV raises cv2.error (not ValueError) on odd shapes and headers
            failed.append((i, f"{type(err).__name__}: {str(err).strip()}"))
    return out, failed


def _array_chunk(args) -> tuple[np.ndarray, int]:
    arrays, opts, start = args
    out = np.zeros((len(arrays), *_image_shape(opts)), np.uint8)
    empty = 0
    for i, img in enumerate(arrays):
        try:
            out[i], is_empty = _process_one(img, **opts)
        except (ValueError, cv2.error) as err:
            raise PreprocessError(f"array {start + i}: {type(err).__name__}: {err}") from err
        empty += is_empty
    return out, empty


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; no nested thread pools


def _n_workers(workers: int) -> int:
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = all cores), got {workers}")
    if workers:
        return workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    size = max(16, min(MAX_CHUNK, math.ceil(n / (workers * 8))))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _run_chunks(func, tasks: list, workers: int, sizes: list[int], progress: bool, desc: str):
    """Yield ``func(task)`` in order, over a process pool when it pays off.

    A worker that dies (killed, e.g. by the out-of-memory killer) fails the job
    with :class:`PreprocessError` naming the chunk's first input; a
    ``multiprocessing.Pool`` would wait for it forever.
    """
    bar = tqdm(total=sum(sizes), desc=desc, unit="img", disable=not progress, mininterval=1.0)
    try:
        if workers == 1 or len(tasks) <= 1:
            for task, n in zip(tasks, sizes, strict=True):
                yield func(task)
                bar.update(n)
            return
        # fork keeps hwbench imported and never re-runs a Snakemake adapter's
        # __main__ (spawn/forkserver would); fall back to spawn where fork is absent
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        # OpenCV's thread pool does not survive a fork: a child that touches a pool the
        # parent had started (any parallel cv2 call on a large image) waits forever on
        # the parent's copied locks. Stopping the parent's pool first leaves none to copy.
        cv2_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        pool = ProcessPoolExecutor(
            min(workers, len(tasks)),
            mp_context=multiprocessing.get_context(method),
            initializer=_worker_init,
        )
        try:
            # a bounded window of tasks in flight: results wait in order, memory stays flat
            pending = collections.deque()
            queue = iter(enumerate(tasks))
            for index, task in queue:
                pending.append((index, pool.submit(func, task)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                index, future = pending.popleft()
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    raise PreprocessError(
                        f"a worker process died while processing {_first_input(tasks[index])} "
                        f"(chunk {index + 1} of {len(tasks)}), most likely killed by the "
                        "out-of-memory killer. Lower preprocess.workers or "
                        "preprocess.max_pixels, or give the job more memory."
                    ) from exc
                for next_index, task in queue:
                    pending.append((next_index, pool.submit(func, task)))
                    break
                yield result
                bar.update(sizes[index])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            cv2.setNumThreads(cv2_threads)
    finally:
        bar.close()


def _first_input(task) -> str:
    items = task[0]
    if len(items) and isinstance(items[0], str):
        return f"{items[0]} and the next {len(items) - 1} file(s)"
    start = task[2] if len(task) > 2 else 0
    return f"arrays {start}..{start + len(items) - 1}"


def _options(sigma, border, size, rescale, invert, max_pixels=MAX_PIXELS, native=False) -> dict:
    """Worker options; ``size`` is (height, width) when ``native``, else the output side."""
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    return dict(
        sigma=float(sigma),
        border=int(border),
        size=tuple(int(n) for n in size) if native else int(size),
        rescale=bool(rescale),
        invert=invert,
        native=bool(native),
        max_pixels=int(max_pixels),
    )


def native_shape(paths: Sequence[str]) -> tuple[int, int]:
    """(height, width) of the first image whose header Pillow reads: the size every
    image of a native-size dataset must have."""
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the header only
    try:
        for path in paths:
            try:
                with Image.open(path) as img:
                    width, height = img.size
            except Exception:  # noqa: BLE001 (unreadable: the workers report it)
                continue
            return height, width
    finally:
        Image.MAX_IMAGE_PIXELS = guard
    raise PreprocessError(
        f"none of the {len(paths)} images (first: {paths[0] if paths else 'none'}) has a "
        "header Pillow can read, so their native size is unknown"
    )


def preprocess_files(
    paths: Sequence[str | os.PathLike],
    *,
    sigma: float = 1.0,
    border: int = 2,
    size: int = OUTPUT_SIZE,
    rescale: bool = True,
    invert: bool | None = None,
    workers: int = 0,
    on_error: str = "stop",
    progress: bool = True,
    max_pixels: int = MAX_PIXELS,
    native: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Decode (OpenCV) and preprocess image files over all cores.

    Returns ``(images, failed)``: uint8 N x size x size for the files that could be
    read, in input order, and the paths that could not. ``on_error="stop"`` raises
    :class:`PreprocessError` at the first unreadable file instead; ``"skip"``
    drops it and lists it in ``failed``. ``workers=0`` uses every core.
    ``native=True``: ink only, at the images' own size (N x H x W; ``sigma``,
    ``border``, ``size`` and ``rescale`` unused).
    """
    paths = [os.fspath(p) for p in paths]
    opts = _file_options(paths, sigma, border, size, rescale, invert, max_pixels, native)
    images, failed = _preprocess_paths(paths, opts, workers, on_error, progress)
    return images, [paths[i] for i in failed]


def _file_options(paths, sigma, border, size, rescale, invert, max_pixels, native) -> dict:
    if native:
        size = native_shape(paths)
    return _options(sigma, border, size, rescale, invert, max_pixels, native)


def _preprocess_paths(
    paths: list[str], opts: dict, workers: int, on_error: str, progress: bool
) -> tuple[np.ndarray, list[int]]:
    """:func:`preprocess_files` returning the positions of the failed paths."""
    # filled in place: a large dataset is held once, not once more as chunk copies
    images = np.zeros((len(paths), *_image_shape(opts)), np.uint8)
    failed = _fill_images(images, paths, opts, workers, on_error, progress)
    if failed:
        images = np.delete(images, failed, axis=0)
    return images, failed


def _fill_images(
    images: np.ndarray,
    paths: list[str],
    opts: dict,
    workers: int,
    on_error: str,
    progress: bool,
    filled=None,
) -> list[int]:
    """Process ``paths`` into the rows of ``images`` (an array or a memmap); the
    positions of the failed paths (their rows stay zero) are returned. ``filled``,
    if given, is called with each block of rows once written, in order."""
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    workers = _n_workers(workers)
    bounds = _chunks(len(paths), workers)
    tasks = [(paths[a:b], opts) for a, b in bounds]
    sizes = [b - a for a, b in bounds]
    failed, reasons = [], {}
    results = _run_chunks(_file_chunk, tasks, workers, sizes, progress, "preprocess")
    for (start, end), (chunk, bad) in zip(bounds, results, strict=True):
        for pos, reason in bad:
            if on_error == "stop":
                results.close()  # shuts the pool down
                raise PreprocessError(
                    f"{paths[start + pos]}: {reason} (unreadable, truncated, too large, "
                    "degenerate or not an image). "
                    "Replace or remove the file (and its manifest row), or set "
                    "preprocess.on_error: skip to drop such images and list them in the log."
                )
            failed.append(start + pos)
            reasons[start + pos] = reason
        images[start:end] = chunk
        if filled is not None:
            filled(images[start:end])
    if failed:
        log.warning("skipped %d unreadable or degenerate image(s):", len(failed))
        for i in failed:
            log.warning("  %s: %s", paths[i], reasons[i])
    return failed


def _write_images(
    target: Path,
    paths: list[str],
    opts: dict,
    workers: int,
    on_error: str,
    progress: bool,
    where: str,
) -> tuple[list[int], str]:
    """Process ``paths`` straight into the .npy file ``target`` (memory-mapped, written
    atomically): the dataset is never held in memory, whatever its size. Rows of
    failed paths are left out. Returns their positions and the file's digest
    (hwbench.store), hashed block by block as the rows are written."""
    shape = (len(paths), *_image_shape(opts))
    with store.atomic_path(target) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        store.reserve(tmp, os.path.getsize(tmp))  # a full disk: an error now, not a SIGBUS
        hasher = store.new_hasher()
        with open(tmp, "rb") as f:
            hasher.update(f.read(images.offset))  # the .npy header, then the rows in order
        failed = _fill_images(images, paths, opts, workers, on_error, progress, hasher.update)
        digest = hasher.hexdigest()
        if len(failed) == len(paths):
            raise PreprocessError(f"{where}: none of the {len(paths)} images could be read")
        if failed:
            keep = np.delete(np.arange(len(paths)), failed)
            # kept rows move forward in place (keep[i] >= i), a block at a time
            for start in range(0, len(keep), MAX_CHUNK):
                rows = keep[start : start + MAX_CHUNK]
                images[start : start + len(rows)] = images[rows]
            with store.atomic_path(tmp) as compact:  # a file with only the kept rows
                digest = store.save_npy(compact, images[: len(keep)])
        images.flush()
        del images
    return failed, digest


def preprocess_arrays(
    arrays: Iterable[np.ndarray] | np.ndarray,
    *,
    sigma: float = 1.0,
    border: int = 2,
    size: int = OUTPUT_SIZE,
    rescale: bool = True,
    invert: bool | None = None,
    workers: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Preprocess images already in memory (readers that render or decode themselves).

    ``arrays``: an N x H x W array or a sequence of 2-D / H x W x C arrays, any
    dtype :func:`to_ink` accepts. Returns uint8 N x size x size.
    """
    opts = _options(sigma, border, size, rescale, invert)
    arrays = list(arrays)
    workers = _n_workers(workers)
    bounds = _chunks(len(arrays), workers)
    tasks = [(arrays[a:b], opts, a) for a, b in bounds]
    images = np.zeros((len(arrays), size, size), np.uint8)
    empty = 0
    sizes = [b - a for a, b in bounds]
    results = _run_chunks(_array_chunk, tasks, workers, sizes, progress, "preprocess")
    for (start, end), (chunk, n_empty) in zip(bounds, results, strict=True):
        images[start:end] = chunk
        empty += n_empty
    if empty:
        log.warning("%d image(s) had no ink and became all-zero images", empty)
    return images


MANIFEST_COLUMNS = ["file", *store.META_COLUMNS]


def read_manifest(manifest_csv: str | os.PathLike) -> pd.DataFrame:
    """Read a raw manifest, checking its columns; all columns as strings except label."""
    manifest_csv = Path(manifest_csv)
    if not manifest_csv.exists():
        raise FileNotFoundError(
            f"{manifest_csv} not found: build or download the raw dataset first"
        )
    frame = pd.read_csv(manifest_csv, dtype=str, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise store.DatasetFormatError(
            f"{manifest_csv}: missing columns {missing}; a raw manifest needs {MANIFEST_COLUMNS}"
        )
    if frame.empty:
        raise store.DatasetFormatError(f"{manifest_csv}: no rows; the raw dataset is empty")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    if labels.isna().any():
        row = int(labels.isna().to_numpy().argmax())
        raise store.DatasetFormatError(
            f"{manifest_csv}: row {row + 2} has label {frame['label'].iloc[row]!r}; "
            "labels must be integers"
        )
    frame["label"] = labels.astype(np.int64)
    for row, name in enumerate(frame["file"]):
        parts = Path(name.replace("\\", "/")).parts
        if not name or Path(name).is_absolute() or ".." in parts:
            raise store.DatasetFormatError(
                f"{manifest_csv}: row {row + 2} names file {name!r}; files must be given "
                "relative to the manifest's folder, without '..' (a manifest may not reach "
                "outside its dataset)"
            )
    return frame


def preprocess_manifest(
    manifest_csv: str | os.PathLike,
    out_folder: str | os.PathLike,
    *,
    sigma: float = 1.0,
    border: int = 2,
    size: int = OUTPUT_SIZE,
    rescale: bool = True,
    invert: bool | None = None,
    workers: int = 0,
    on_error: str = "stop",
    progress: bool = True,
    max_pixels: int = MAX_PIXELS,
    native: bool = False,
) -> dict:
    """Preprocess every image of a raw manifest into ``out_folder`` (store format).

    meta.csv gets the manifest's columns except ``file``; rows of skipped images
    are dropped. ``native=True``: ink only, at the images' own size (see
    :func:`preprocess_files`). images.npy is written memory-mapped, never held in
    memory; its digest goes to digest.json. Returns a summary: images written, skipped paths.
    """
    manifest_csv = Path(manifest_csv)
    out_folder = Path(out_folder)
    frame = read_manifest(manifest_csv)
    root = manifest_csv.parent
    paths = [str(root / f) for f in frame["file"]]
    opts = _file_options(paths, sigma, border, size, rescale, invert, max_pixels, native)
    how = f"native size {opts['size']}" if native else f"sigma={sigma} border={border}"
    log.info("%s: %d images, %s", manifest_csv, len(paths), how)
    target = out_folder / store.IMAGES_FILE
    failed, digest = _write_images(
        target, paths, opts, workers, on_error, progress, str(manifest_csv)
    )
    store.write_digest(out_folder, digest)
    keep = np.ones(len(paths), bool)
    keep[failed] = False
    meta = frame.loc[keep].drop(columns="file").reset_index(drop=True)
    store.save_meta(out_folder, meta, len(meta))
    skipped = [paths[i] for i in failed]
    log.info("wrote %d images to %s (%d skipped)", len(meta), out_folder, len(skipped))
    return {"images": len(meta), "skipped": skipped}
