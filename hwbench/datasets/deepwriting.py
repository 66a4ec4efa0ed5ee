"""ETH DeepWriting: online strokes rendered offline, one PNG per character.

``deepwriting_dataset.zip`` (the authors' current link; formerly
``deepwriting_dataset.tar.gz``) holds ``deepwriting_{training,validation}.npz``,
written by the authors' ``data_scripts/json_to_numpy.py`` (github.com/emreaksan/deepwriting):
per sample ``samples`` (T x 3: x, y, pen-up; relative offsets, standardised),
per point ``char_labels`` and ``eoc_labels`` (1 at a character's last point), per
sample ``subject_labels`` (the writer), and ``alphabet``: ``'\x00'`` then
``0-9 a-z A-Z '.,-()/``. ``char_labels`` are not positions in ``alphabet``: they
are scikit-learn ``LabelEncoder`` codes, i.e. positions in the *sorted* alphabet
(``'\x00' ' ( ) , - . / 0-9 A-Z a-z``), and the authors decode them the same way.
The reader maps each code back to its character and labels it by its position in
``alphabet`` (0 = no character, the "space" class). The standardisation and
offsets are undone, each character's points are drawn with OpenCV polylines
(black ink on white, NIST-like) and the PNGs listed in a manifest for the
generic preprocess rule.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hwbench.datasets import safe_pickle
from hwbench.datasets.common import write_manifest
from hwbench.datasets.extract import ArchiveError, extract_tar, extract_zip

log = logging.getLogger("hwbench.datasets")

REQUIRED_KEYS = ("char_labels", "eoc_labels", "subject_labels", "alphabet")
SPLIT_WORDS = (("train", "train"), ("valid", "validation"), ("test", "test"))


class DeepWritingFormatError(ValueError):
    """A DeepWriting file is not in the expected layout; the message names it."""


def absolute_strokes(strokes: np.ndarray, data: dict) -> np.ndarray:
    """Undo the dataset's standardisation and relative representation: absolute x, y, pen."""
    pts = np.array(strokes, dtype=np.float64)[:, :3]
    steps = preprocessing_steps(data.get("preprocessing", []))
    if "normalization" in steps:
        mean, std = np.asarray(data["mean"], float), np.asarray(data["std"], float)
        pts[:, :2] = pts[:, :2] * std[:2] + mean[:2]
    if "relative_representation" in steps:
        pts[:, :2] = np.cumsum(pts[:, :2], axis=0)
    if "scale" in steps and "min" in data and "max" in data:
        # x and y were scaled to [0, 1] by different ranges: undo it to keep the aspect ratio.
        span = np.asarray(data["max"], float) - np.asarray(data["min"], float)
        pts[:, :2] *= span[:2]
    return pts


def preprocessing_steps(value) -> list[str]:
    """The 'preprocessing' entry as a flat list of names (saved as a list or an array)."""
    out = []
    for item in np.atleast_1d(np.asarray(value, dtype=object)):
        if isinstance(item, (list, tuple, np.ndarray)):
            out += preprocessing_steps(item)
        else:
            out.append(str(item))
    return out


def char_segments(char_labels: np.ndarray, eoc_labels: np.ndarray):
    """(start, stop, label) of each character: a run of one label ended by eoc or a change."""
    labels = np.asarray(char_labels).reshape(-1)
    eoc = np.asarray(eoc_labels).reshape(-1)
    start = 0
    for i in range(len(labels)):
        last = i == len(labels) - 1
        if last or eoc[i] >= 0.5 or labels[i + 1] != labels[i]:
            yield start, i + 1, int(labels[i])
            start = i + 1


def render(points: np.ndarray, size: int = 128, pen_width: int = 3, margin: int = 8, flip_y=False):
    """Draw absolute (x, y, pen-up) points as black strokes on a white size x size image."""
    image = np.full((size, size), 255, np.uint8)
    xy = points[:, :2].astype(np.float64)
    if flip_y:
        xy[:, 1] = -xy[:, 1]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    extent = max(float((hi - lo).max()), 1e-9)
    scale = (size - 2 * margin) / extent
    centred = (xy - (lo + hi) / 2) * scale + size / 2
    pix = np.round(centred * 16).astype(np.int32)  # 4 fractional bits for cv2 sub-pixel drawing
    ends = np.flatnonzero(points[:, 2] >= 0.5)
    start = 0
    for stop in list(ends + 1) + [len(points)]:
        stroke = pix[start:stop]
        if len(stroke) == 1:
            cv2.circle(image, tuple(stroke[0]), pen_width * 8, 0, -1, cv2.LINE_AA, 4)
        elif len(stroke) > 1:
            cv2.polylines(image, [stroke.reshape(-1, 1, 2)], False, 0, pen_width, cv2.LINE_AA, 4)
        start = stop
    return image


def _split_of(path: Path) -> str:
    name = path.name.lower()
    for word, split in SPLIT_WORDS:
        if word in name:
            return split
    raise DeepWritingFormatError(
        f"{path}: cannot tell its split (expected training/validation in the name)"
    )


def load_npz(path: Path) -> dict:
    # The registry has no checksum for this archive, so its object arrays (one
    # stroke array per sample) are unpickled by an allow-list reader that builds
    # only NumPy arrays and plain values: a crafted file cannot run code.
    try:
        data = safe_pickle.load_npz(path)
    except (safe_pickle.UnsafePickleError, ArchiveError) as exc:
        raise DeepWritingFormatError(str(exc)) from exc
    except (OSError, ValueError, EOFError) as exc:
        raise DeepWritingFormatError(f"{path}: not a readable npz ({exc})") from exc
    strokes_key = "strokes" if "strokes" in data else "samples"
    missing = [k for k in (strokes_key, *REQUIRED_KEYS) if k not in data]
    if missing:
        raise DeepWritingFormatError(f"{path}: keys {missing} missing; has {sorted(data)}")
    data["strokes"] = data[strokes_key]
    n = len(data["strokes"])
    for key in ("char_labels", "eoc_labels", "subject_labels"):
        if len(data[key]) != n:
            raise DeepWritingFormatError(
                f"{path}: {key} has {len(data[key])} entries for {n} samples"
            )
    return data


def label_decoder(alphabet: list[str], where) -> np.ndarray:
    """code -> position in ``alphabet``, for ``char_labels`` written by a LabelEncoder
    fitted on ``alphabet`` (its codes follow the sorted symbols)."""
    if len(set(alphabet)) != len(alphabet):
        raise DeepWritingFormatError(f"{where}: the alphabet repeats a symbol: {alphabet}")
    return np.array([alphabet.index(c) for c in sorted(alphabet)], dtype=np.int64)


ARCHIVES = ("deepwriting_dataset.zip", "deepwriting_dataset.tar.gz")


def _archive(files: dict[str, Path]) -> Path:
    for name in ARCHIVES:
        if name in files:
            return Path(files[name])
    raise DeepWritingFormatError(
        f"no DeepWriting archive among {sorted(files)}; expected {ARCHIVES}"
    )


def build_deepwriting_manifest(files: dict[str, Path], raw: Path, options: dict | None = None):
    options = options or {}
    size, pen_width = int(options.get("image_size", 128)), int(options.get("pen_width", 3))
    flip_y, keep_null = bool(options.get("flip_y", False)), bool(options.get("include_null", False))
    raw = Path(raw)
    extracted = raw / "extracted"
    archive = _archive(files)
    (extract_zip if archive.name.endswith(".zip") else extract_tar)(archive, extracted)
    npzs = sorted(extracted.rglob("*.npz"))
    if not npzs:
        raise DeepWritingFormatError(f"{archive}: no .npz inside")
    rows = []
    for npz in npzs:
        split = _split_of(npz)
        data = load_npz(npz)
        published = [str(c) for c in data["alphabet"]]
        index_of_code = label_decoder(published, npz)
        # Index 0 is '\x00' (saved by NumPy as ''; no character): the adaptation paper's "space".
        alphabet = [" " if c in ("", "\x00") else c for c in published]
        folder = Path("images") / split
        (raw / folder).mkdir(parents=True, exist_ok=True)
        for i, strokes in enumerate(tqdm(data["strokes"], desc=npz.name, mininterval=5)):
            pts = absolute_strokes(strokes, data)
            codes = np.asarray(data["char_labels"][i]).reshape(-1).astype(np.int64)
            if len(codes) != len(pts):
                raise DeepWritingFormatError(
                    f"{npz}: sample {i} has {len(pts)} points but {len(codes)} char labels"
                )
            if codes.min(initial=0) < 0 or codes.max(initial=0) >= len(alphabet):
                raise DeepWritingFormatError(
                    f"{npz}: sample {i} label {codes.max()} outside the {len(alphabet)}-symbol "
                    "alphabet"
                )
            labels = index_of_code[codes]
            writer = str(np.asarray(data["subject_labels"][i]).reshape(-1)[0])
            for k, (a, b, label) in enumerate(char_segments(labels, data["eoc_labels"][i])):
                if label == 0 and not keep_null:
                    continue  # points between characters (label '\x00')
                rel = folder / f"{i:06d}_{k:03d}.png"
                cv2.imwrite(str(raw / rel), render(pts[a:b], size, pen_width, flip_y=flip_y))
                rows.append(
                    {
                        "file": rel.as_posix(),
                        "label": label,
                        "label_name": alphabet[label],
                        "script": "latin",
                        "writer": writer,
                        "pen": "",
                        "source_split": split,
                    }
                )
    if not rows:
        raise DeepWritingFormatError(f"{extracted}: no characters found in {npzs}")
    frame = write_manifest(rows, raw / "manifest.csv")
    log.info("deepwriting: %d characters, %d writers", len(frame), frame.writer.nunique())
    return frame
