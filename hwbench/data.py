"""Selecting a study's images, and turning them into model input.

:func:`select` is the one way every study picks its rows of a processed dataset:
by split (a split file's names, or the dataset's own ``source_split``), by class
names (a "charset" is always a named set of label names, see
:func:`charset_classes`), by writers and by resample. It returns the uint8
images with labels, row indices and meta.

Training data is a dict of tensors with the same first dimension ("x" the stored
input, "y" the labels, plus anything a study's loss needs). The studies keep
``x`` compact (the uint8 images) and hand :func:`hwbench.engine.fit` a per-batch
transform (:class:`BatchTransform`: resize, crop, 1 -> 3 channels,
normalisation), which runs on a whole batch on the device, never per sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from hwbench.rows import store_origin, with_origin
from hwbench.store import IMAGES_FILE, Processed, load_processed, read_split

if TYPE_CHECKING:  # pandas is imported where meta.csv is read (hwbench.store)
    import pandas as pd

# The split "scheme" that reads the dataset's own partition (meta column
# source_split: MNIST train/test, NIST hsf_*) instead of a split file.
SOURCE_SPLIT = "source_split"

# Per-channel statistics for normalisation of [0, 1] images.
NORMALIZATION = {
    "none": ((0.0,), (1.0,)),
    "mnist": ((0.1307,), (0.3081,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def load_split(
    processed_dir: str | os.PathLike,
    split_csv: str | os.PathLike,
    split_name: str,
    resample: int | None = None,
) -> Processed:
    """The rows of a processed dataset that ``split_csv`` assigns to ``split_name``.

    Rows come in the split file's order. ``resample`` picks one resample of the
    schemes that have them (the adaptation scheme).
    """
    data = load_processed(processed_dir)
    split = read_split(split_csv)
    rows = split[split["split"] == split_name]
    if resample is not None:
        if "resample" not in split.columns:
            raise ValueError(f"{split_csv}: no 'resample' column, but resample={resample} given")
        rows = rows[rows["resample"] == resample]
    if rows.empty:
        names = sorted(split["split"].unique())
        raise ValueError(f"{split_csv}: no rows in split {split_name!r}; it has {names}")
    index = rows["index"].to_numpy()
    if index.min() < 0 or index.max() >= len(data.images):
        raise ValueError(
            f"{split_csv}: index out of range for {processed_dir} ({len(data.images)} images); "
            "rebuild the split file"
        )
    return data.subset(index)


@dataclass
class Selection:
    """Rows of a processed dataset chosen by :func:`select`.

    ``labels`` are positions in ``classes`` when classes were given, else the
    dataset's own label ids; ``index`` the rows in the dataset, ``meta`` their
    meta.csv rows (index reset).
    """

    images: np.ndarray | None
    labels: np.ndarray
    index: np.ndarray
    meta: pd.DataFrame
    classes: list[str] | None
    store: Path | None = None  # the images.npy the rows come from, when known

    def __len__(self) -> int:
        return len(self.index)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x uint8 N x H x W, y int64 N)`` CPU tensors; ``x`` is marked with its
        store origin (:func:`hwbench.rows.store_origin`), so that a training job's
        fingerprint need not hash it."""
        x = torch.from_numpy(np.ascontiguousarray(self.images))
        if self.store is not None:
            with_origin(x, store_origin(self.store, self.index))
        return x, torch.from_numpy(np.asarray(self.labels, dtype=np.int64))

    @property
    def writers(self) -> np.ndarray:
        return self.meta["writer"].astype(str).to_numpy()


def charset_classes(charsets: Sequence[str]) -> list[str]:
    """The label names of the named charsets (hwbench.charsets), in order."""
    from hwbench.charsets import CHARSETS, check_charsets

    return [c for name in check_charsets(charsets) for c in CHARSETS[name]]


def class_positions(meta: pd.DataFrame, classes: Sequence[str], where: str) -> np.ndarray:
    """Each row's position in ``classes`` by its ``label_name`` (-1: not one of them).

    Selecting by name, not label id, works alike for the embedded dataset (global
    ids) and the real ones (each dataset's own ids): both name the character.
    """
    if "label_name" not in meta.columns:
        raise ValueError(f"{where} has no label_name column; rebuild the processed dataset")
    lookup = {c: i for i, c in enumerate(classes)}
    return meta["label_name"].astype(str).map(lookup).fillna(-1).astype(np.int64).to_numpy()


def split_of_rows(
    meta: pd.DataFrame,
    split_frame: pd.DataFrame | None,
    where: str,
    resample: int | None = None,
) -> np.ndarray:
    """The split name of every row ('' where the split file has none).

    ``split_frame`` None reads the dataset's own ``source_split`` column.
    ``resample`` keeps one resample of the schemes that have them (adaptation).
    """
    if split_frame is None:
        return meta["source_split"].astype(str).to_numpy()
    if resample is not None:
        if "resample" not in split_frame.columns:
            raise ValueError(f"{where}: no 'resample' column, but resample={resample} given")
        split_frame = split_frame[split_frame["resample"] == resample]
    elif "resample" in split_frame.columns and split_frame["resample"].nunique() > 1:
        raise ValueError(f"{where}: the split file has resamples; choose one (resample=...)")
    index = split_frame["index"].to_numpy()
    if len(index) and (index.min() < 0 or index.max() >= len(meta)):
        raise ValueError(
            f"{where}: split indices exceed the {len(meta)} images; rebuild the split file"
        )
    names = np.full(len(meta), "", dtype=object)
    names[index] = split_frame["split"].astype(str).to_numpy()
    return names


def _split_order(split_frame: pd.DataFrame, rows: np.ndarray, resample: int | None) -> np.ndarray:
    """``rows`` in the split file's order (rows are unique per resample)."""
    if resample is not None:
        split_frame = split_frame[split_frame["resample"] == resample]
    order = split_frame["index"].to_numpy()
    return order[np.isin(order, rows)]


def select(
    data: Processed | str | os.PathLike,
    split: pd.DataFrame | str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    *,
    classes: Sequence[str] | None = None,
    writers: Sequence[str] | None = None,
    resample: int | None = None,
    order: str = "dataset",
    where: str | None = None,
    read_images: bool = True,
) -> Selection:
    """The rows of a processed dataset in ``splits``, of ``classes``, by ``writers``.

    ``data``: a :class:`Processed` or its folder (memory-mapped). ``split``: a split
    file (or its frame); None reads the dataset's ``source_split``. ``splits``: the
    split names to take (None: every row). ``classes``: label names; labels become
    positions in it and other rows are left out. ``writers``: keep these writers.
    ``order``: ``"dataset"`` (row order) or ``"split"`` (the split file's order).
    ``read_images=False`` leaves ``images`` None: the caller reads the rows
    (``index``) itself, e.g. per batch (:mod:`hwbench.rows`).
    An empty selection is an error naming what was asked for.
    """
    if not isinstance(data, Processed):
        where = where or str(data)
        data = load_processed(data, mmap=True)
    where = where or "dataset"
    frame = read_split(split) if isinstance(split, str | os.PathLike) else split
    keep = np.ones(len(data.meta), bool)
    if splits is not None:
        keep &= np.isin(split_of_rows(data.meta, frame, where, resample), list(splits))
    labels = data.meta["label"].to_numpy().astype(np.int64)
    if classes is not None:
        classes = list(classes)
        labels = class_positions(data.meta, classes, where)
        keep &= labels >= 0
    if writers is not None:
        keep &= np.isin(data.meta["writer"].astype(str).to_numpy(), [str(w) for w in writers])
    rows = np.flatnonzero(keep)
    if order == "split":
        if frame is None:
            raise ValueError(f"{where}: order='split' needs a split file")
        rows = _split_order(frame, rows, resample)
    elif order != "dataset":
        raise ValueError(f"order={order!r}: use 'dataset' or 'split'")
    if not len(rows):
        asked = {"splits": splits, "classes": classes and classes[:10], "writers": writers}
        asked = ", ".join(f"{k}={v}" for k, v in asked.items() if v is not None)
        raise ValueError(f"{where}: no rows match {asked or 'the selection'}")
    return Selection(
        images=data.images[rows] if read_images else None,
        labels=labels[rows],
        index=rows,
        meta=data.meta.iloc[rows].reset_index(drop=True),
        classes=classes,
        store=data.folder / IMAGES_FILE if data.folder is not None else None,
    )


def map_labels(
    labels: np.ndarray, label_map: Mapping | Callable | None, where: str = "labels"
) -> np.ndarray:
    """Apply ``label_map`` (dict or function) to integer labels; unmapped labels are an error."""
    labels = np.asarray(labels)
    if label_map is None:
        return labels.astype(np.int64)
    if callable(label_map):
        return np.asarray(label_map(labels), dtype=np.int64)
    missing = sorted(set(np.unique(labels).tolist()) - set(label_map))
    if missing:
        raise ValueError(f"{where}: labels {missing[:10]} are not in the label map")
    lookup = np.vectorize(label_map.__getitem__, otypes=[np.int64])
    return lookup(labels) if labels.size else labels.astype(np.int64)


def load_arrays(
    processed_dir: str | os.PathLike,
    split_csv: str | os.PathLike,
    split_name: str,
    label_map: Mapping | Callable | None = None,
    resample: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x uint8 N x H x W, y int64 N)`` CPU tensors of one split."""
    part = load_split(processed_dir, split_csv, split_name, resample)
    y = map_labels(part.meta["label"].to_numpy(), label_map, f"{processed_dir} labels")
    return torch.from_numpy(np.ascontiguousarray(part.images)), torch.from_numpy(y)


class BatchTransform:
    """uint8 images (N x H x W) -> float32 model input N x C x S x S, one batch at a time.

    Scales to [0, 1], resizes to ``size`` (bilinear, antialiased) when given, takes
    the central ``crop`` x ``crop`` window when given (resize 256, crop 224: the
    lifelong paper's input), repeats grey to ``channels`` and normalises with
    ``NORMALIZATION[normalize]`` (a single-value statistic applies to every channel;
    3-channel statistics need ``channels=3``). Runs on the batch's device: on the
    GPU when the batch is there. Its repr names every setting (the engine's
    checkpoint fingerprint records it).
    """

    def __init__(
        self,
        size: int | None = None,
        channels: int = 1,
        normalize: str = "none",
        crop: int | None = None,
    ):
        if normalize not in NORMALIZATION:
            raise ValueError(f"normalize={normalize!r}: choose one of {list(NORMALIZATION)}")
        if channels not in (1, 3):
            raise ValueError(f"channels={channels}: use 1 or 3")
        mean, std = NORMALIZATION[normalize]
        if len(mean) not in (1, channels):
            raise ValueError(f"normalize={normalize!r} has {len(mean)} channels, input {channels}")
        if crop and size and crop > size:
            raise ValueError(f"crop={crop} is larger than the resized images ({size} px)")
        self.size, self.channels, self.normalize, self.crop = size, channels, normalize, crop
        self._stats = {torch.device("cpu"): (_channel_stat(mean), _channel_stat(std))}

    def __repr__(self) -> str:
        opts = f"size={self.size}, channels={self.channels}, normalize={self.normalize!r}"
        if self.crop:
            opts += f", crop={self.crop}"
        return f"BatchTransform({opts})"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 3:
            raise ValueError(f"images must be N x H x W, got shape {tuple(images.shape)}")
        part = images.unsqueeze(1).float().div_(255.0)
        size = self.size
        if size and tuple(part.shape[-2:]) != (size, size):
            part = F.interpolate(
                part, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            ).clamp_(0.0, 1.0)
        part = center_crop(part, self.crop)
        part = part.expand(-1, self.channels, -1, -1)
        mean, std = self._statistics(part.device)
        return (part - mean) / std

    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        # Copied to a device once, then kept there: a copy per batch would be two
        # host-to-device transfers, each a stream sync, at every training step.
        if device not in self._stats:
            cpu = self._stats[torch.device("cpu")]
            self._stats[device] = tuple(v.to(device) for v in cpu)
        return self._stats[device]

    def __getstate__(self):  # a pickled copy keeps the host statistics only
        return {**self.__dict__, "_stats": {torch.device("cpu"): self._stats[torch.device("cpu")]}}


def _channel_stat(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(values).view(1, -1, 1, 1)


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """The central ``size`` x ``size`` window of N x C x H x W inputs (all of it: None)."""
    if not size:
        return x
    h, w = x.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"cannot crop {size} x {size} from {h} x {w} images")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def batch_transform(model_cfg: Mapping, **overrides) -> BatchTransform:
    """The per-batch input transform a model config section asks for (model.schema.yaml).

    ``overrides`` replace :func:`input_options` keywords (e.g. lifelong's resize and crop).
    """
    return BatchTransform(**{**input_options(model_cfg), **overrides})


def to_model_input(
    images: torch.Tensor,
    device: torch.device | str = "cpu",
    size: int | None = None,
    channels: int = 1,
    normalize: str = "none",
    chunk: int = 4096,
) -> torch.Tensor:
    """uint8 N x H x W images -> float32 N x C x S x S on ``device``, once for all.

    :class:`BatchTransform` applied chunk by chunk. No study uses it: they keep the
    uint8 images and pass the transform to :func:`hwbench.engine.fit`. It stays as
    the whole-dataset reference the tests compare the per-batch path with.
    """
    transform = BatchTransform(size, channels, normalize)
    if images.dim() != 3:
        raise ValueError(f"images must be N x H x W, got shape {tuple(images.shape)}")
    device = torch.device(device)
    side_h, side_w = (size, size) if size else images.shape[1:]
    out = torch.empty((len(images), channels, side_h, side_w), device=device)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].to(device, non_blocking=True)
        out[start : start + len(part)] = transform(part)
    return out


def to_device(data: Mapping[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Move every tensor of a data dict to ``device``."""
    return {k: v.to(device) for k, v in data.items()}


def input_options(model_cfg: Mapping) -> dict:
    """:class:`BatchTransform` keywords from a model config section (model.schema.yaml)."""
    return {
        "size": model_cfg.get("input_size"),
        "channels": model_cfg.get("in_channels", 1),
        "normalize": model_cfg.get("normalize", "none"),
    }
