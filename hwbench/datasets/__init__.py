"""Real datasets: registry, verified downloads, safe extraction and readers.

See docs/datasets.md. Rules call :mod:`hwbench.datasets.prepare`; studies use
:func:`select_nist` and :func:`transfer_split` for the NIST subsets and split.
"""

from hwbench.datasets.download import ChecksumError, DownloadError
from hwbench.datasets.extract import (
    ArchiveError,
    MissingToolError,
    TruncatedArchiveError,
    UnsafeArchiveError,
)
from hwbench.datasets.nist import select_nist, transfer_split
from hwbench.datasets.registry import ARRAY_DATASETS, IMAGE_DATASETS, REGISTRY, get

__all__ = [
    "ARRAY_DATASETS",
    "IMAGE_DATASETS",
    "REGISTRY",
    "ArchiveError",
    "ChecksumError",
    "DownloadError",
    "MissingToolError",
    "TruncatedArchiveError",
    "UnsafeArchiveError",
    "get",
    "select_nist",
    "transfer_split",
]
