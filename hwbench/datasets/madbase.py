"""MADBase (MAHDBase) Arabic-Indic digits: the AUC RAR archives or the CSV mirror.

The RAR archives hold 28x28 BMPs named ``writerWWW_passPP_digitD.bmp``, so each
image keeps its writer. The CSV mirror (``csvTrainImages 60k x 784.csv``, ...)
has the same images without writer ids, stored column-major (MATLAB order).
Both are written directly as processed 28x28 arrays, white ink on black like
MNIST, so the two variants give the same images.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from hwbench.datasets.common import concat, make_meta, white_on_black
from hwbench.datasets.extract import extract_rar, open_zip, read_zip_member
from hwbench.datasets.textrecords import locate_decode_error, locate_parse_error, record_error
from hwbench.datasets.vocab import ARABIC_DIGITS

log = logging.getLogger("hwbench.datasets")

BMP_NAME = re.compile(r"writer(\d+)_pass(\d+)_digit(\d)\.bmp$", re.IGNORECASE)
RAR_SPLITS = {"MAHDBase_TrainingSet.rar": "train", "MAHDBase_TestingSet.rar": "test"}
CSV_MEMBERS = {
    ("train", "images"): "csvtrainimages",
    ("train", "labels"): "csvtrainlabel",
    ("test", "images"): "csvtestimages",
    ("test", "labels"): "csvtestlabel",
}


class MadbaseFormatError(ValueError):
    """A MADBase file is not in the expected layout; the message names it."""


def read_madbase(files: dict[str, Path], options: dict | None = None):
    variant = (options or {}).get("variant", "rar")
    if variant == "rar":
        return read_madbase_rar(files)
    if variant == "csv":
        return read_madbase_csv(files["madbase_csv.zip"])
    raise ValueError(f"config data.madbase.variant = {variant!r}; choose 'rar' or 'csv'")


def read_bmp_folder(folder: Path, split: str):
    """Images and meta of every writerWWW_passPP_digitD.bmp under ``folder``."""
    rows = []
    for path in folder.rglob("*"):
        match = BMP_NAME.search(path.name)
        if match and path.is_file():
            writer, rep, digit = (int(g) for g in match.groups())
            rows.append((writer, rep, digit, path))
    if not rows:
        raise MadbaseFormatError(
            f"{folder}: no writerWWW_passPP_digitD.bmp images found in the extracted archive"
        )
    rows.sort()
    images = np.empty((len(rows), 28, 28), dtype=np.uint8)
    for i, (_, _, _, path) in enumerate(rows):
        with Image.open(path) as img:
            if img.size != (28, 28):
                raise MadbaseFormatError(
                    f"{path}: image is {img.size[0]}x{img.size[1]}, expected 28x28"
                )
            images[i] = np.asarray(img.convert("L"))
    writers = [f"{split}_w{w:03d}" for w, _, _, _ in rows]
    labels = [d for _, _, d, _ in rows]
    return white_on_black(images), make_meta(labels, ARABIC_DIGITS, split, writers=writers)


def read_madbase_rar(files: dict[str, Path]):
    parts = []
    for name, split in RAR_SPLITS.items():
        archive = Path(files[name])
        target = archive.parent / "extracted" / archive.stem
        extract_rar(archive, target)
        parts.append(read_bmp_folder(target, split))
        log.info(
            "%s: %d images from %d writers", name, len(parts[-1][0]), parts[-1][1].writer.nunique()
        )
    return concat(parts)


def _parse_csv(data: bytes, where: str) -> np.ndarray:
    lines = data.splitlines()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # name the line, not a byte offset
        raise locate_decode_error(lines, where, "utf-8", MadbaseFormatError) from exc
    first = text.split("\n", 1)[0]
    header = 0 if re.search(r"[A-Za-z]", first) else None  # a few re-uploads add a header row
    try:
        frame = pd.read_csv(io.StringIO(text), header=header)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        message = f"not a numeric CSV ({exc})"
        raise locate_parse_error(lines, where, message, MadbaseFormatError) from exc
    cells = frame.apply(pd.to_numeric, errors="coerce")
    bad = np.flatnonzero(cells.isna().any(axis=1).to_numpy())
    if len(bad):
        number = int(bad[0]) + 1 + (header is not None)
        raise record_error(
            where, number, lines[number - 1], "non-numeric or empty cells", MadbaseFormatError
        )
    return cells.to_numpy()


def read_madbase_csv(archive: Path):
    """The CSV mirror: a zip holding the four csv{Train,Test}{Images,Label} files."""
    archive = Path(archive)
    found: dict[tuple[str, str], bytes] = {}

    def key_of(name: str):
        base = PurePosixPath(name).name.lower()
        for key, prefix in CSV_MEMBERS.items():
            if base.startswith(prefix) and base.endswith(".csv"):
                return key
        return None

    # members streamed one at a time and counted against the archive limits
    with open_zip(archive, lambda name: key_of(name) is not None) as (zf, infos):
        for info in infos:
            found[key_of(info.filename)] = read_zip_member(zf, info)
    missing = [CSV_MEMBERS[k] for k in CSV_MEMBERS if k not in found]
    if missing:
        raise MadbaseFormatError(f"{archive}: no member named like {missing}*.csv")
    parts = []
    for split in ("train", "test"):
        where = f"{archive}:{split}"
        pixels = _parse_csv(found[(split, "images")], where + " images")
        labels = _parse_csv(found[(split, "labels")], where + " labels").reshape(-1)
        if pixels.shape[1] != 784:
            raise MadbaseFormatError(f"{where} images: {pixels.shape[1]} columns, expected 784")
        if len(pixels) != len(labels):
            raise MadbaseFormatError(f"{where}: {len(pixels)} images but {len(labels)} labels")
        if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
            raise MadbaseFormatError(f"{where}: pixels outside 0..255 or labels outside 0..9")
        # Rows were written column-major (MATLAB): reshape in Fortran order.
        images = pixels.astype(np.uint8).reshape(-1, 28, 28, order="F")
        parts.append((white_on_black(images), make_meta(labels.astype(int), ARABIC_DIGITS, split)))
    return concat(parts)
