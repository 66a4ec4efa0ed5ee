"""Read pickled NumPy data without running code from it.

Some published datasets keep arrays in pickles: DeepWriting's ``.npz`` holds
object arrays (one stroke array per sample), CIFAR-100 python a pickled dict.
``pickle.load`` and ``np.load(allow_pickle=True)`` call whatever a pickle names,
so a crafted file runs its payload. These readers let a pickle build only plain
containers (the pickle opcodes for dict, list, tuple, str, bytes, numbers) and
NumPy arrays, dtypes and scalars; any other callable is refused, naming the file.
This is the same allow-list idea as ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

# (module, name) a pickle may name: NumPy's array and scalar reconstruction, and
# codecs.encode, which Python 3 writes for bytes in protocol 2 pickles (a pure
# text-to-bytes conversion).
ALLOWED = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class UnsafePickleError(ValueError):
    """A pickle names a callable outside :data:`ALLOWED`; it was not run."""


class _NumpyUnpickler(pickle.Unpickler):
    def __init__(self, stream, where: str, encoding: str):
        super().__init__(stream, encoding=encoding)
        self.where = where

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.where}: refusing to unpickle {module}.{name}: a data file may hold "
            "only arrays and plain values, and calling this could run code. The file is "
            "not the published dataset; delete it and fetch the dataset again from its "
            "registered mirror (docs/security.md)."
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.where}: refusing a persistent id in a pickle")


def load(stream, where: str | os.PathLike, encoding: str = "latin1"):
    """Unpickle ``stream`` allowing only plain values and NumPy arrays (see module doc).

    ``latin1`` reads the Python 2 pickles of NumPy arrays (CIFAR, DeepWriting) and
    is harmless for Python 3 ones.
    """
    try:
        return _NumpyUnpickler(stream, str(where), encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise UnsafePickleError(f"{where}: not a readable pickle of arrays ({exc})") from exc


def _read_npy(data: bytes, where: str) -> np.ndarray:
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    # version 3.0 differs from 2.0 only in allowing utf-8 field names
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, dtype = read_header(stream)
    if not dtype.hasobject:
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)
    array = load(stream, where)
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise UnsafePickleError(f"{where}: the pickled array does not match its header {shape}")
    return array


def load_npz(path: str | os.PathLike) -> dict:
    """Every array of an ``.npz`` (object arrays through :func:`load`), as a dict.

    The npz is a zip: its members are checked and counted against the archive
    limits of hwbench.datasets.extract before they are read.
    """
    from hwbench.datasets.extract import open_zip, read_zip_member

    path = Path(path)
    out = {}
    with open_zip(path, lambda name: name.endswith(".npy")) as (zf, infos):
        for info in infos:
            data = read_zip_member(zf, info)
            out[info.filename[:-4]] = _read_npy(data, f"{path}:{info.filename}")
    return out
