"""Check processed stores against the digests recorded when they were written.

``snakemake --cores 1 verify`` (rule ``verify``, workflow/rules/verify.smk) runs
``python -m hwbench.verify`` on the stores of the config's ``datasets``. For each
store it checks images.npy through the store's checked opener (header, length,
rows against meta.csv), compares the file with its ``digest.json`` record (size,
shape, dtype) and rehashes the whole file: a store with an intact header and
damaged pixels is caught only by this rehash. The table goes to
``reports/verify.csv``; any failure stops the job, naming each store, what is
wrong and the command that rebuilds it.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import pandas as pd

from hwbench import store

log = logging.getLogger("hwbench.verify")
COLUMNS = ["store", "images", "bytes", "digest", "status", "problem"]


class StoreDigestError(store.DatasetFormatError):
    """A store does not match the digest recorded when it was written."""


def verify_store(folder: str | os.PathLike) -> dict:
    """One row of the verify table for the store in ``folder`` (status ok or failed)."""
    folder = Path(folder)
    images = folder / store.IMAGES_FILE
    row = dict(store=str(folder), images=None, bytes=None, digest=None)
    try:
        meta_rows = len(pd.read_csv(folder / store.META_FILE, usecols=["label"]))
        layout = store.images_layout(images, meta_rows)
        record = store.recorded_digest(folder)
        row.update(images=layout.shape[0], bytes=images.stat().st_size, digest=record["digest"])
        problem = _record_mismatch(record, layout, row["bytes"])
        if problem is None:
            now = store.store_digest(images)
            if now != record["digest"]:
                problem = (
                    f"its content hashes to {now}, but {folder / store.DIGEST_FILE} recorded "
                    f"{record['digest']} when it was written: the file changed since"
                )
        if problem:
            raise StoreDigestError(f"{images}: {problem}; " + store.rebuild_hint(images))
    except (OSError, ValueError) as err:  # DatasetFormatError is a ValueError
        return row | dict(status="failed", problem=str(err))
    return row | dict(status="ok", problem="")


def _record_mismatch(record: dict, layout: store.NpyLayout, nbytes: int) -> str | None:
    """What the digest record says that the file's header and size contradict."""
    if record["bytes"] != nbytes:
        return f"{nbytes:,} bytes, but its digest record says {record['bytes']:,}"
    if tuple(record["shape"]) != layout.shape or record["dtype"] != str(layout.dtype):
        return (
            f"header says {layout.dtype} {layout.shape}, but its digest record says "
            f"{record['dtype']} {tuple(record['shape'])}"
        )
    return None


def verify_stores(folders, out: str | os.PathLike | None = None) -> pd.DataFrame:
    """Verify every store in ``folders``; write the table to ``out`` (when given) only
    if all are ok, else raise :class:`StoreDigestError` listing each failure."""
    table = pd.DataFrame([verify_store(f) for f in folders], columns=COLUMNS)
    failed = table[table.status != "ok"]
    for row in table.itertuples():
        log.info("%s: %s %s", row.store, row.status, row.problem)
    if len(failed):
        raise StoreDigestError(
            f"{len(failed)} of {len(table)} store(s) failed verification:\n  "
            + "\n  ".join(failed.problem)
        )
    if out is not None:
        store.write_csv(out, table)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="data/processed/<dataset> folders")
    parser.add_argument("--out", type=Path, required=True, help="the table (reports/verify.csv)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    verify_stores(args.folders, args.out)


if __name__ == "__main__":
    main()
