"""CIFAR-100 (python version) for the OneModel study: 32x32 colour images, 100 classes.

``cifar-100-python.tar.gz`` holds ``cifar-100-python/{train,test,meta}``, each a
pickled dict (the format torchvision and the dataset's page describe): ``data`` is
N x 3072 uint8 (1024 red, 1024 green, 1024 blue values, row-major), ``fine_labels``
the class index, ``meta``'s ``fine_label_names`` the class names. The archive is
verified (MD5) before it is read, and the pickles are read by an allow-list
unpickler (hwbench.datasets.safe_pickle) all the same: MD5 alone is no defence
against a crafted file, and a pickle can run code.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from hwbench.datasets import safe_pickle
from hwbench.datasets.common import concat, make_meta
from hwbench.datasets.extract import open_tar

ARCHIVE = "cifar-100-python.tar.gz"
MEMBERS = {"train": "cifar-100-python/train", "test": "cifar-100-python/test"}
META = "cifar-100-python/meta"


def _load(tar: tarfile.TarFile, name: str, archive: Path) -> dict:
    try:
        member = tar.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise ValueError(f"{archive}: no member {name!r}; is this cifar-100-python.tar.gz?")
    return safe_pickle.load(member, f"{archive}:{name}")


def read_cifar100(files: dict[str, Path], options: dict | None = None):
    """``(images uint8 N x 32 x 32 x 3, meta)``: train then test, fine labels.

    ``label`` is the fine class index (0-99), ``label_name`` its name (e.g.
    ``aquarium_fish``), ``script`` empty (not handwriting), ``source_split``
    train/test.
    """
    archive = Path(files[ARCHIVE])
    with open_tar(archive) as tar:
        names = list(_load(tar, META, archive)["fine_label_names"])
        parts = []
        for split, member in MEMBERS.items():
            batch = _load(tar, member, archive)
            data = np.asarray(batch["data"], dtype=np.uint8)
            labels = np.asarray(batch["fine_labels"], dtype=np.int64)
            if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
                raise ValueError(
                    f"{archive}:{member}: expected N x 3072 pixels and N labels, "
                    f"got {data.shape} and {len(labels)}"
                )
            if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
                raise ValueError(f"{archive}:{member}: labels outside 0..{len(names) - 1}")
            images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            parts.append((images, make_meta(labels, names, split, scripts=[""] * len(labels))))
    images, meta = concat(parts)
    return np.ascontiguousarray(images), meta
