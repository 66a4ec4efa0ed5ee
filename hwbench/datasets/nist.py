"""NIST Special Database 19: writer, label and hsf partition of every image.

``by_write.zip`` holds the images by writer (``by_write/hsf_N/fWWWW_TT/...``);
``by_class_md5.log`` lists the MD5 of every ``by_class`` image with its class
folder (hex ASCII code) and partition. Joining the two on the image MD5 (the
LEAF approach, without unpacking the 2 GB by_class archive) gives each image
its label, writer and partition. ``by_write_md5.log`` checks every extracted
image. The images become a manifest for the generic preprocess rule.

Subsets (digits / letters / all 62) and the transfer study's split (train on
every partition but hsf_4, test on hsf_4, as NIST advises) are taken from the
processed dataset with :func:`select_nist` and :func:`transfer_split`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hwbench.datasets.common import write_manifest
from hwbench.datasets.extract import iter_zip
from hwbench.datasets.vocab import NIST62

log = logging.getLogger("hwbench.datasets")

IMAGE_SIZE = 128
SD19_URL = "https://s3.amazonaws.com/nist-srd/SD19/"
TEST_PARTITION = "hsf_4"
SUBSETS = {"digits": (0, 10), "letters": (10, 62), "all": (0, 62)}
_CLASS_INDEX = {format(ord(c), "02x"): i for i, c in enumerate(NIST62)}
_LOG_LINE = re.compile(r"^\s*([0-9a-fA-F]{32})\s+\*?(.+?)\s*$")
_BSD_LINE = re.compile(r"^\s*MD5\s*\((.+)\)\s*=\s*([0-9a-fA-F]{32})\s*$")
_BY_CLASS = re.compile(r"by_class/([0-9a-fA-F]{2})/(hsf_\d+)/[^/]+\.png$")
_BY_WRITE = re.compile(r"by_write/(hsf_\d+)/(f\d+_\d+)/(?:.+/)?[^/]+\.png$")


class NistFormatError(ValueError):
    """An SD19 file is not in the expected layout; the message names it."""


def parse_md5_log(path: str | Path, anchor: str):
    """Yield (md5, path from ``anchor``/ on) for each line of an md5sum-style log."""
    path = Path(path)
    parsed = 0
    with open(path, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            m = _LOG_LINE.match(line)
            if m:
                digest, name = m.group(1), m.group(2)
            else:
                m = _BSD_LINE.match(line)
                if not m:
                    continue
                name, digest = m.group(1), m.group(2)
            name = name.replace("\\", "/")
            at = name.find(anchor + "/")
            if at < 0:
                continue
            parsed += 1
            yield digest.lower(), name[at:]
    if parsed == 0:
        raise NistFormatError(
            f"{path}: no '<md5> <path containing {anchor}/...>' lines; is this {anchor}_md5.log?"
        )


def class_index(path: str | Path) -> dict[str, tuple[int, str] | None]:
    """MD5 -> (label 0..61, hsf partition) from by_class_md5.log; None when ambiguous."""
    index: dict[str, tuple[int, str] | None] = {}
    for digest, name in parse_md5_log(path, "by_class"):
        m = _BY_CLASS.search(name)
        if not m:
            continue  # train_XX folders duplicate the hsf_N images
        label = _CLASS_INDEX.get(m.group(1).lower())
        if label is None:
            raise NistFormatError(
                f"{path}: class folder {m.group(1)!r} is not one of the 62 classes"
            )
        value = (label, m.group(2))
        if digest in index and index[digest] is not None and index[digest][0] != label:
            index[digest] = None  # identical image under two labels: cannot tell
        elif digest not in index:
            index[digest] = value
    return index


def png_size(data: bytes, where: str) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise NistFormatError(f"{where}: not a PNG image")
    return struct.unpack(">II", data[16:24])


def build_nist_manifest(
    files: dict[str, Path], raw: Path, options: dict | None = None
) -> pd.DataFrame:
    """Extract by_write images, join labels, write ``raw/manifest.csv``."""
    raw = Path(raw)
    classes = class_index(files["by_class_md5.log"])
    write_md5 = {
        name: digest for digest, name in parse_md5_log(files["by_write_md5.log"], "by_write")
    }
    archive = files["by_write.zip"]
    rows, skipped, seen = [], Counter(), 0
    for rel, data in tqdm(
        iter_zip(archive, lambda n: n.lower().endswith(".png")), desc="by_write", mininterval=5
    ):
        name = str(rel)
        seen += 1
        m = _BY_WRITE.search(name)
        if not m:
            skipped["outside by_write/hsf_N/fWWWW_TT/"] += 1
            continue
        digest = hashlib.md5(data).hexdigest()
        logged = write_md5.get(name[name.find("by_write/") :])
        if logged is None:
            skipped["not in by_write_md5.log"] += 1
        elif logged != digest:
            raise NistFormatError(
                f"{archive}:{name}: md5 {digest} but by_write_md5.log says {logged}; "
                "the archive is corrupt, fetch it again"
            )
        size = png_size(data, f"{archive}:{name}")
        if size != (IMAGE_SIZE, IMAGE_SIZE):
            raise NistFormatError(f"{archive}:{name}: {size[0]}x{size[1]}, expected 128x128")
        found = classes.get(digest, False)
        if found is False:
            skipped["no by_class label for its md5"] += 1
            continue
        if found is None:
            skipped["md5 shared by images of two labels"] += 1
            continue
        label, class_partition = found
        partition, writer = m.group(1), m.group(2)
        if class_partition != partition:
            skipped["partition differs between by_write and by_class (kept by_write's)"] += 1
        target = raw / rel
        if not (target.exists() and target.stat().st_size == len(data)):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        rows.append(
            {
                "file": name,
                "label": label,
                "label_name": NIST62[label],
                "script": "latin",
                "writer": writer,
                "pen": "",
                "source_split": partition,
            }
        )
    for reason, count in sorted(skipped.items()):
        log.warning("nist: %d images %s", count, reason)
    if not seen:
        raise NistFormatError(
            f"{archive}: holds no PNG image. hwbench reads the 2nd edition (2016) of SD19, "
            f"whose by_write.zip holds by_write/hsf_N/fWWWW_TT/<d|u|l|c>WWWW_TT/*.png; the 1st "
            f"edition's MIS files are not read. Get {SD19_URL}by_write.zip."
        )
    if not rows:
        raise NistFormatError(f"{archive}: no labelled images (see the log for why)")
    rows.sort(key=lambda r: r["file"])
    frame = write_manifest(rows, raw / "manifest.csv")
    log.info(
        "nist: %d images, %d writers, partitions %s",
        len(frame),
        frame.writer.nunique(),
        dict(Counter(frame.source_split)),
    )
    return frame


def select_nist(processed, subset: str = "all"):
    """Digits (labels 0-9), letters (52 classes, relabelled 0-51) or all 62 of a NIST dataset.

    Takes a :class:`hwbench.store.Processed` and returns a new one whose ``label``
    column is 0-based within the subset; ``label_name`` keeps the character.
    """
    if subset not in SUBSETS:
        raise ValueError(f"NIST subset {subset!r}; choose one of {sorted(SUBSETS)}")
    lo, hi = SUBSETS[subset]
    labels = processed.meta["label"].to_numpy()
    picked = processed.subset((labels >= lo) & (labels < hi))
    picked.meta["label"] = picked.meta["label"] - lo
    return picked


def transfer_split(meta: pd.DataFrame) -> np.ndarray:
    """'train' for every hsf partition but hsf_4, 'test' for hsf_4 (NIST's advice)."""
    parts = meta["source_split"].astype(str)
    bad = sorted(set(parts) - {p for p in parts if re.fullmatch(r"hsf_\d+", p)})
    if bad:
        raise ValueError(f"transfer_split needs NIST hsf_N partitions in source_split, got {bad}")
    return np.where(parts == TEST_PARTITION, "test", "train")
