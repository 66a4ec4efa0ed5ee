"""Entry points the Snakemake rules call: fetch one file, build a dataset.

* :func:`fetch_file` makes ``data/raw/<ds>/<file>`` present and verified and
  writes a record ``data/raw/<ds>/verified/<file>.json`` (the rule's output:
  the raw file itself is never a rule output, so no rerun can delete it).
* :func:`build_arrays` turns verified files of a 28x28 dataset straight into
  ``data/processed/<ds>/`` (images.npy + meta.csv).
* :func:`build_manifest` writes ``data/raw/<ds>/manifest.csv`` for datasets of
  larger images, which the generic preprocess rule then processes.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path

from hwbench.datasets import extract, registry
from hwbench.datasets.download import DEADLINE_S, MAX_UNREGISTERED_BYTES, Verified, fetch
from hwbench.store import save_processed, write_json

log = logging.getLogger("hwbench.datasets")


def record_path(dataset: str, name: str, raw_root: str | os.PathLike = "data/raw") -> Path:
    return Path(raw_root) / dataset / "verified" / f"{name}.json"


def fetch_file(
    dataset: str,
    name: str,
    raw_root: str | os.PathLike = "data/raw",
    local_copy: str | None = None,
    variant: str | None = None,
    download_options: dict | None = None,
    spec: registry.DatasetSpec | None = None,
    record: str | os.PathLike | None = None,
) -> Verified:
    """Fetch (or accept a local copy of) one registered file and record the check."""
    spec = spec or registry.get(dataset)
    opts = dict(download_options or {})
    verified = fetch(
        spec,
        name,
        Path(raw_root) / dataset,
        local_copy=local_copy,
        variant=variant,
        timeout=float(opts.get("timeout_s", 60)),
        retries=int(opts.get("retries", 4)),
        backoff=float(opts.get("backoff_s", 2.0)),
        deadline_s=float(opts.get("deadline_s", DEADLINE_S)),
        max_unregistered_bytes=int(
            opts.get("max_unregistered_mb", MAX_UNREGISTERED_BYTES // 2**20) * 2**20
        ),
    )
    write_json(record or record_path(dataset, name, raw_root), verified.to_dict())
    return verified


def files_from_records(records, raw: str | os.PathLike) -> dict[str, Path]:
    """Registry file name -> path on disk, from the verification records."""
    files = {}
    for record in records:
        data = json.loads(Path(record).read_text(encoding="utf-8"))
        path = Path(raw) / data["path"]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} (recorded in {record}) is gone; rerun with --forcerun fetch_raw"
            )
        files[data["file"]] = path
    return files


def _reader(spec: registry.DatasetSpec):
    module, function = spec.reader.split(":")
    return getattr(importlib.import_module(f"hwbench.datasets.{module}"), function)


def build_arrays(
    dataset: str,
    records,
    out_folder: str | os.PathLike,
    options: dict | None = None,
    raw_root: str | os.PathLike = "data/raw",
    spec: registry.DatasetSpec | None = None,
    limits: extract.Limits | None = None,
):
    """Read a dataset straight into the processed format: a 28x28 one from its verified
    files, or a manual one (IAM, IFN/ENIT word images) from the user's copy.

    ``limits``: how much its archives may unpack to (config ``data.extract``).
    """
    spec = spec or registry.get(dataset)
    raw = Path(raw_root) / dataset
    files = files_from_records(records, raw)
    with extract.limits(limits or extract.Limits()):
        if spec.manual:  # no fetched files: the reader reads the user's copy (or ``raw``)
            images, meta = _reader(spec)(files, raw, options or {})
        else:
            images, meta = _reader(spec)(files, options or {})
    save_processed(out_folder, images, meta)
    log.info("%s: wrote %d images to %s", dataset, len(images), out_folder)
    return images, meta


def build_manifest(
    dataset: str,
    records,
    options: dict | None = None,
    raw_root: str | os.PathLike = "data/raw",
    spec: registry.DatasetSpec | None = None,
    limits: extract.Limits | None = None,
):
    """Write data/raw/<dataset>/manifest.csv for an image dataset (``limits`` as above)."""
    spec = spec or registry.get(dataset)
    raw = Path(raw_root) / dataset
    files = files_from_records(records, raw)
    with extract.limits(limits or extract.Limits()):
        return _reader(spec)(files, raw, options or {})
