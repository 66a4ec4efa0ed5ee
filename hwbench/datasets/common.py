"""Shared helpers of the dataset readers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwbench.datasets.vocab import script_of
from hwbench.store import META_COLUMNS


def make_meta(labels, names, split, writers=None, pens=None, scripts=None) -> pd.DataFrame:
    """meta.csv rows: label (dataset index), label_name (character), script, writer, pen, split."""
    labels = np.asarray(labels, dtype=np.int64)
    label_names = [names[i] for i in labels]
    n = len(labels)
    meta = pd.DataFrame(
        {
            "label": labels,
            "label_name": label_names,
            "script": scripts if scripts is not None else [script_of(c) for c in label_names],
            "writer": writers if writers is not None else [""] * n,
            "pen": pens if pens is not None else [""] * n,
            "source_split": split if not isinstance(split, str) else [split] * n,
        }
    )
    return meta[META_COLUMNS]


def concat(parts):
    """Join (images, meta) pieces in order."""
    images = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 28, 28), np.uint8)
    meta = pd.concat([p[1] for p in parts], ignore_index=True)
    return images, meta


def white_on_black(images: np.ndarray) -> np.ndarray:
    """Flip images whose border is bright (dark ink on white) to MNIST polarity, per image."""
    images = np.asarray(images, dtype=np.uint8)
    border = np.concatenate(
        [images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1
    )
    flip = border.mean(axis=1) > 127
    out = images.copy()
    out[flip] = 255 - out[flip]
    return out


MANIFEST_COLUMNS = ["file"] + META_COLUMNS


def write_manifest(rows: list[dict] | pd.DataFrame, path) -> pd.DataFrame:
    """Write data/raw/<ds>/manifest.csv (file relative to the manifest's folder) atomically."""
    from hwbench.store import write_csv

    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS) if isinstance(rows, list) else rows
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: manifest is missing columns {missing}")
    write_csv(path, frame[MANIFEST_COLUMNS])
    return frame
