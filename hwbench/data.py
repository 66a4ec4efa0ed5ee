"""Tensors for training, from the processed store and a split file.

Training data is a dict of tensors with the same first dimension ("x" the model
input, "y" the labels, plus anything a study's loss needs). Transforms (resize,
1 -> 3 channels, normalisation) run once on the whole tensor, in chunks on the
device, never per sample.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from hwbench.store import Processed, load_processed, read_split

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


def to_model_input(
    images: torch.Tensor,
    device: torch.device | str = "cpu",
    size: int | None = None,
    channels: int = 1,
    normalize: str = "none",
    chunk: int = 4096,
) -> torch.Tensor:
    """uint8 N x H x W images -> float32 N x C x S x S on ``device``, once for all.

    Scales to [0, 1], resizes to ``size`` (bilinear, antialiased) when given,
    repeats grey to ``channels`` and normalises with ``NORMALIZATION[normalize]``
    (a single-value statistic applies to every channel; 3-channel statistics need
    ``channels=3``). Works chunk by chunk to bound the peak memory.
    """
    if images.dim() != 3:
        raise ValueError(f"images must be N x H x W, got shape {tuple(images.shape)}")
    if normalize not in NORMALIZATION:
        raise ValueError(f"normalize={normalize!r}: choose one of {list(NORMALIZATION)}")
    if channels not in (1, 3):
        raise ValueError(f"channels={channels}: use 1 or 3")
    mean, std = NORMALIZATION[normalize]
    if len(mean) not in (1, channels):
        raise ValueError(f"normalize={normalize!r} has {len(mean)} channels, input {channels}")
    device = torch.device(device)
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    side_h, side_w = (size, size) if size else images.shape[1:]
    out = torch.empty((len(images), channels, side_h, side_w), device=device)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].to(device, non_blocking=True)
        part = part.unsqueeze(1).float().div_(255.0)
        if size and tuple(part.shape[-2:]) != (size, size):
            part = F.interpolate(
                part, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            ).clamp_(0.0, 1.0)
        part = part.expand(-1, channels, -1, -1)
        out[start : start + len(part)] = (part - mean_t) / std_t
    return out


def to_device(data: Mapping[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Move every tensor of a data dict to ``device``."""
    return {k: v.to(device) for k, v in data.items()}


def input_options(model_cfg: Mapping) -> dict:
    """:func:`to_model_input` keywords from a model config section (model.schema.yaml)."""
    return {
        "size": model_cfg.get("input_size"),
        "channels": model_cfg.get("in_channels", 1),
        "normalize": model_cfg.get("normalize", "none"),
    }
