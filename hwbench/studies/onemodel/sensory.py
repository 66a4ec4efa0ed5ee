"""The OneModel sensory layer: every input becomes one fixed-size canvas.

The paper puts every sample of every task into a 3 x 300 x 600 tensor (channels x
height x width) so one network can take them all (Sec. 3.4): images are scaled to
the canvas height with their aspect ratio kept and zero-padded, speech becomes an
STFT spectrogram, text a matrix of per-word embeddings, both zero-padded. The
embedded default uses a small canvas (1 x 32 x 64) for the CPU budget.

Everything works on whole batches at once (no per-sample Python). A job never
holds every canvas: :class:`CanvasTransform` keeps each task's uint8 images and
builds one batch's canvases at a time, on the batch's device. In training the
engine's reader thread groups a batch's ids by task and reads their images on the
host (:meth:`CanvasTransform.stage`), so the step itself reads nothing back from
the device.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from hwbench.geometry import scaled_size
from hwbench.rows import StoredRows, origin_of, take_rows


def check_canvas(canvas: Sequence[int]) -> tuple[int, int, int]:
    """``canvas`` as (channels, height, width) of positive ints, with a clear error."""
    canvas = tuple(int(v) for v in canvas)
    if len(canvas) != 3 or min(canvas) < 1:
        raise ValueError(f"canvas must be [channels, height, width], positive, got {canvas}")
    return canvas  # type: ignore[return-value]


def images_to_canvas(
    images: torch.Tensor, canvas: Sequence[int], scale_height: int | None = None
) -> torch.Tensor:
    """Scale a batch of same-size images to the canvas and zero-pad (top-left aligned).

    ``images`` is N x H x W or N x C x H x W (uint8 or float); the result is float
    N x channels x height x width in the input's value range. Images are scaled to
    ``scale_height`` rows (default: the canvas height; the paper uses 120 of 300 for
    handwriting) with the aspect ratio kept, shrunk further if they would be wider
    than the canvas; bilinear with antialiasing. One channel is repeated to fill
    three, as the paper repeats grey images.
    """
    channels, height, width = check_canvas(canvas)
    x = images.float()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"images must be N x H x W or N x C x H x W, got {tuple(images.shape)}")
    if x.shape[1] not in (1, channels):
        raise ValueError(f"{x.shape[1]}-channel images do not fit a {channels}-channel canvas")
    scale_h = min(int(scale_height or height), height)
    new_h, new_w = scaled_size(x.shape[2], x.shape[3], scale_h, width)
    if (new_h, new_w) != tuple(x.shape[2:]):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True)
    x = x.expand(-1, channels, -1, -1)
    out = torch.zeros((len(x), channels, height, width), dtype=torch.float32, device=x.device)
    out[:, :, :new_h, :new_w] = x
    return out


def spectrogram(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Log-magnitude STFT spectrograms of N x T waves: N x (n_fft // 2 + 1) x frames.

    Frequency runs down the rows (row 0 = DC), time along the columns, as the
    paper's figure shows; log1p keeps the dynamic range image-like.
    """
    if waves.ndim != 2:
        raise ValueError(f"waves must be N x T, got {tuple(waves.shape)}")
    window = torch.hann_window(n_fft, dtype=torch.float32)
    spec = torch.stft(
        waves.float(), n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True
    )
    return torch.log1p(spec.abs())


def pad_to_canvas(maps: torch.Tensor, canvas: Sequence[int]) -> torch.Tensor:
    """Zero-pad (or crop) N x H x W maps into the canvas, top-left, channels repeated."""
    channels, height, width = check_canvas(canvas)
    if maps.ndim != 3:
        raise ValueError(f"maps must be N x H x W, got {tuple(maps.shape)}")
    out = torch.zeros((len(maps), channels, height, width), dtype=torch.float32, device=maps.device)
    h, w = min(height, maps.shape[1]), min(width, maps.shape[2])
    out[:, :, :h, :w] = maps[:, None, :h, :w].float()
    return out


def standardize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Zero mean and unit variance with statistics taken from the training canvases."""
    return (x - mean) / max(float(std), 1e-8)


@dataclass
class ImageBlock:
    """One task's images of one set, uint8 (N x H x W or N x C x H x W), in host memory
    or on disk."""

    name: str  # e.g. "latin/train", for messages and the transform's repr
    images: torch.Tensor | StoredRows  # StoredRows: read from disk per batch
    scale_height: int | None = None  # rows the images are scaled to on the canvas

    def digest(self) -> str:
        origin = origin_of(self.images)  # rows of a store: its digest, no read
        if origin is not None:
            return origin
        if isinstance(self.images, StoredRows):
            return self.images.digest()  # streamed: the same hash of the same bytes
        data = self.images.contiguous().numpy()
        return hashlib.blake2b(data, digest_size=8).hexdigest()


@dataclass
class StagedIds:
    """A batch of row ids grouped by image block: each present block's images (in
    batch order) and their positions in the batch (None: the batch is that one block).
    What :meth:`CanvasTransform.stage` prepares on the host and the transform takes."""

    n: int
    blocks: list[int]
    images: list[torch.Tensor]
    where: list[torch.Tensor | None]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __len__(self) -> int:
        return self.n

    def to(self, device: torch.device | str, non_blocking: bool = False) -> StagedIds:
        def move(t):
            return None if t is None else t.to(device, non_blocking=non_blocking)

        images = [move(t) for t in self.images]
        where = [move(t) for t in self.where]
        return StagedIds(self.n, self.blocks, images, where, torch.device(device))


class CanvasTransform:
    """Row ids -> standardised canvases (float32 N x C x H x W), one batch at a time.

    The stored input of a OneModel job is a row id per sample: blocks of uint8 images
    (:class:`ImageBlock`, one per task and set) laid end to end, block ``k`` holding
    ids ``offsets[k]`` to ``offsets[k + 1] - 1``. A batch's rows are grouped by block,
    each group scaled onto the canvas with its task's scale height
    (:func:`images_to_canvas`), divided by 255 and standardised with ``mean`` and
    ``std`` (:meth:`fit_statistics`: computed once on the training rows). Canvases
    are built on the device the ids are on. The repr names the canvas, the
    statistics and every block's shape, scale and content hash (the engine's
    checkpoint fingerprint records it).
    """

    def __init__(self, canvas: Sequence[int], blocks: Sequence[ImageBlock]):
        self.canvas = check_canvas(canvas)
        self.blocks = list(blocks)
        for block in self.blocks:
            _check_block(block, self.canvas[0])
        sizes = [len(b.images) for b in self.blocks]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self._ends = torch.as_tensor(self.offsets[1:])
        self._digests = [b.digest() for b in self.blocks]
        self.mean, self.std = 0.0, 1.0

    def ids(self, k: int) -> torch.Tensor:
        """The row ids of block ``k`` (int64)."""
        return torch.arange(int(self.offsets[k]), int(self.offsets[k + 1]))

    def __repr__(self) -> str:
        blocks = ", ".join(
            f"{b.name}:{'x'.join(map(str, b.images.shape))}@{b.scale_height}#{digest}"
            for b, digest in zip(self.blocks, self._digests, strict=True)
        )
        return (
            f"CanvasTransform(canvas={list(self.canvas)}, mean={self.mean!r}, "
            f"std={self.std!r}, blocks=[{blocks}])"
        )

    def stage(self, ids: torch.Tensor, pin: bool = False) -> StagedIds:
        """Host work for the canvases of rows ``ids`` (a CPU tensor): group them by
        block and read each block's images, into pinned memory when ``pin``."""
        ids = torch.as_tensor(ids).long()
        if ids.device.type != "cpu":
            raise ValueError(f"stage takes row ids in host memory, got them on {ids.device}")
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= int(self.offsets[-1])):
            raise ValueError(f"row ids outside 0..{int(self.offsets[-1]) - 1}")
        block = torch.searchsorted(self._ends, ids, right=True)
        staged = StagedIds(len(ids), [], [], [])
        for k in block.unique().tolist():
            where = (block == k).nonzero().squeeze(1)
            rows = ids[where] - int(self.offsets[k])
            staged.blocks.append(k)
            staged.images.append(take_rows(self.blocks[k].images, rows, pin))
            one_block = len(where) == len(ids)  # no scatter
            staged.where.append(None if one_block else where.pin_memory() if pin else where)
        return staged

    def canvases(self, ids: torch.Tensor | StagedIds) -> torch.Tensor:
        """The canvases of rows ``ids`` in 0..1, before standardisation, on the device
        the ids (or the staged batch) are on."""
        if not isinstance(ids, StagedIds):
            ids = self.stage(ids.cpu()).to(ids.device, non_blocking=True)
        out = None
        for k, images, where in zip(ids.blocks, ids.images, ids.where, strict=True):
            canvas = images_to_canvas(images, self.canvas, self.blocks[k].scale_height)
            if where is None:
                out = canvas
                break
            if out is None:
                out = torch.empty((len(ids), *self.canvas), device=ids.device)
            out[where] = canvas
        if out is None:
            out = torch.empty((0, *self.canvas), device=ids.device)
        return out.div_(255.0)

    def __call__(self, ids: torch.Tensor | StagedIds) -> torch.Tensor:
        return standardize(self.canvases(ids), self.mean, self.std)

    def fit_statistics(
        self, ids: torch.Tensor, device: torch.device | str = "cpu", max_values: int = 2**24
    ) -> CanvasTransform:
        """Take ``mean`` and ``std`` from the canvases of rows ``ids`` (the training set).

        Streams over the rows, never more than ``max_values`` canvas values at once,
        merging per-chunk moments in float64 (Chan et al.); the sample standard
        deviation (n - 1), as ``torch.std``. Both are rounded to float32, the
        precision of the canvases. Returns ``self``.
        """
        if not len(ids):
            raise ValueError("no training rows to take the canvas statistics from")
        rows = max(1, max_values // math.prod(self.canvas))
        n, mean, m2 = 0, 0.0, 0.0
        for start in range(0, len(ids), rows):
            chunk = self.canvases(ids[start : start + rows].to(device)).double()
            k, chunk_mean = chunk.numel(), float(chunk.mean())
            chunk_m2 = float((chunk - chunk_mean).square_().sum())
            delta, total = chunk_mean - mean, n + k
            mean += delta * k / total
            m2 += chunk_m2 + delta * delta * n * k / total
            n = total
        std = math.sqrt(m2 / max(n - 1, 1))
        self.mean, self.std = float(np.float32(mean)), float(np.float32(std))
        return self


def _check_block(block: ImageBlock, channels: int) -> None:
    images = block.images
    if images.dtype != torch.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            f"{block.name}: images must be uint8 N x H x W or N x C x H x W, "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    if images.ndim == 4 and images.shape[1] not in (1, channels):
        raise ValueError(
            f"{block.name}: {images.shape[1]}-channel images do not fit a "
            f"{channels}-channel canvas (onemodel.canvas)"
        )
