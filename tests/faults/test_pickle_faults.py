"""Issue 14 item 3: no code runs from an unverified DeepWriting npz (or a CIFAR pickle)."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from hwbench.datasets import cifar, deepwriting, safe_pickle
from tests._datasets_support import deepwriting_tar, tar_gz_bytes, write


class Payload:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_npz(marker) -> bytes:
    strokes = np.empty(1, dtype=object)
    strokes[0] = Payload(marker)
    buf = io.BytesIO()
    np.savez(
        buf,
        strokes=strokes,
        char_labels=np.zeros((1, 2)),
        eoc_labels=np.zeros((1, 2)),
        subject_labels=np.zeros(1),
        alphabet=np.array(["\x00", "a"]),
    )
    return buf.getvalue()


def test_crafted_deepwriting_npz_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    archive = write(
        tmp_path / "raw" / "deepwriting_dataset.tar.gz",
        tar_gz_bytes({"deepwriting_training.npz": _evil_npz(marker)}),
    )
    with pytest.raises(deepwriting.DeepWritingFormatError) as err:
        deepwriting.build_deepwriting_manifest(
            {"deepwriting_dataset.tar.gz": archive}, tmp_path / "raw"
        )
    assert not marker.exists(), "the pickle payload ran"
    text = str(err.value)
    assert "deepwriting_training.npz" in text and "posix.system" in text
    assert "fetch the dataset again" in text


def test_published_layout_still_reads(tmp_path):
    data, expected = deepwriting_tar()
    archive = write(tmp_path / "raw" / "deepwriting_dataset.tar.gz", data)
    frame = deepwriting.build_deepwriting_manifest(
        {"deepwriting_dataset.tar.gz": archive}, tmp_path / "raw"
    )
    assert len(frame) == len(expected)


def test_python2_style_pickle_of_arrays_loads():
    # CIFAR's batches are Python 2 pickles of dicts holding arrays and byte strings
    batch = {b"data": np.arange(12, dtype=np.uint8).reshape(2, 6), b"fine_labels": [3, 4]}
    got = safe_pickle.load(io.BytesIO(pickle.dumps(batch, protocol=2)), "batch")
    np.testing.assert_array_equal(got[b"data"], batch[b"data"])
    assert got[b"fine_labels"] == [3, 4]


def test_crafted_cifar_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"fine_label_names": Payload(marker)})
    archive = write(
        tmp_path / cifar.ARCHIVE, tar_gz_bytes({cifar.META: evil, "cifar-100-python/train": evil})
    )
    with pytest.raises(safe_pickle.UnsafePickleError, match="refusing to unpickle"):
        cifar.read_cifar100({cifar.ARCHIVE: archive})
    assert not marker.exists(), "the pickle payload ran"
