"""Handwritten word datasets of the OneModel study, supplied by the user: IAM and IFN/ENIT.

Both need registration, so neither is downloaded: the user points
``data.<name>.local_copy`` at an unpacked copy (or puts it at ``data/raw/<name>/``)
and the reader turns it straight into ``data/processed/<name>/`` (route
"arrays"): every word image height-normalised by :mod:`hwbench.wordimages`
(uint8 N x height x max_width, white ink on black), ``label`` the index of the
word among the dataset's sorted distinct words, ``label_name`` the word,
``writer`` from the dataset's own records and ``source_split`` the paper's
partition. The copy is read in place (nothing is copied or deleted).

IAM (Marti & Bunke 2002), as its files really are (verbatim records in
tests/test_datasets_words.py, sources in docs/datasets.md):

- ``ascii/words.txt``: ``a01-000u-00-00 ok 154 408 768 27 51 AT A`` per word: id,
  segmentation ok/err, grey level, x y w h, grammatical tag, then the transcription
  from the 9th field on (``#`` starts a comment). The file's own header documents a
  "number of components" field after the grey level that its records do not carry;
  public loaders (SimpleHTR, the Keras handwriting example) read 8 fields before the
  transcription, as here. A transcription may hold a space (lines.txt writes the
  token ``M Ps``): every field from the 9th on is kept.
- ``words/a01/a01-000u/a01-000u-00-00.png``. Two images of the release are broken
  (``a01-117-05-02``, ``r06-022-03-05``); public loaders skip them, and so does this
  reader, logging each skip.
- ``ascii/forms.txt`` (``a01-000u 000 2 prt 7 5 52 36``: form, writer, ...), for
  the writer ids; optional (without it ``writer`` is empty).
- The partition of the "Large Writer Independent Text Line Recognition Task"
  (``trainset.txt``, ``validationset1.txt``, ``validationset2.txt``,
  ``testset.txt``: one line id such as ``a01-000u-00`` per line; a form id such as
  ``a01-000u`` stands for all its lines), in the copy's root, ``task/`` or
  ``largeWriterIndependentTextLineRecognitionTask/``. This is the writer-independent
  split of the IAM word-spotting literature the paper follows ([17], [34]): train
  and both validation sets are trained on (source_split ``train`` / ``val``),
  ``testset`` is the test set. Words of lines in none of the lists are left out.

IFN/ENIT (Pechwitz et al. 2002), as public loaders read the release
(``ifnenit_v2.0p1e/data/set_a/...``): folders ``set_a`` ... ``set_e`` (in the copy's
root or its ``data/`` folder), each with ``tru/<name>.tru`` (ground truth,
Windows-1256) and the image in ``tif/<name>.tif`` or ``bmp/<name>.bmp`` (``.png`` is
accepted too, in ``png/`` or beside the ``.tru``). The word is the ``AW1:`` token of
the ``LBL:`` line (tokens separated by ``;``), as the public loaders read it; the
writer is the file name's prefix before ``_`` (``cj11_028``: writer ``cj11``). No
verbatim ``.tru`` record is public (the set needs registration): docs/datasets.md
lists this reader as unverified. The paper's partition is a random 75 % / 25 % of
all words (``test_fraction`` 0.25, ``seed``); ``test_sets`` (e.g. ``[e]``) gives the
set-based protocol instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from hwbench.datasets.manual import ManualDatasetError
from hwbench.datasets.textrecords import decode_line, numbered_lines, record_error
from hwbench.store import META_COLUMNS
from hwbench.wordimages import normalize_word_files

log = logging.getLogger("hwbench.datasets")

IAM_PARTITION = {
    "trainset.txt": "train",
    "validationset1.txt": "val",
    "validationset2.txt": "val",
    "testset.txt": "test",
}
IAM_PARTITION_DIRS = ("", "task", "largeWriterIndependentTextLineRecognitionTask")
# Word images of the release that cannot be read (SimpleHTR's bad_samples_reference).
IAM_BROKEN = frozenset({"a01-117-05-02", "r06-022-03-05"})
# a01-000u-00 (line) or a01-000u (form) in a partition list
IAM_ID = re.compile(r"[a-z]\d\d-\d\d\d[a-z]?(-\d\d)?")
IFN_SETS = ("a", "b", "c", "d", "e")
IFN_IMAGE_SUFFIXES = (".tif", ".tiff", ".bmp", ".png")
IFN_ENCODING = "cp1256"


class WordDatasetError(ManualDatasetError):
    """A word dataset's copy is missing files or holds a malformed record; says which."""


def source_root(dataset: str, raw: Path, options: Mapping, layout: str) -> Path:
    """The user's copy (``local_copy``, else data/raw/<dataset>), with an error saying
    what it must hold when it is not there."""
    key = f"data.{dataset}.local_copy"
    root = Path(options["local_copy"]).expanduser() if options.get("local_copy") else Path(raw)
    if not root.is_dir():
        raise WordDatasetError(
            f"{dataset}: folder {root} not found. This dataset needs registration and is "
            f"never downloaded: unpack your copy ({layout}) and point the config key {key} "
            f"at it, or put it at {raw}/ (docs/datasets.md)."
        )
    return root


def word_labels(words: list[str]) -> tuple[np.ndarray, list[str]]:
    """Label of each word: its index among the sorted distinct words."""
    names = sorted(set(words))
    index = {w: k for k, w in enumerate(names)}
    return np.asarray([index[w] for w in words], np.int64), names


def normalize_images(dataset: str, paths: list[Path], options: Mapping):
    """Height-normalised images of ``paths`` and the positions of skipped files."""
    return normalize_word_files(
        paths,
        height=int(options.get("height", 120)),
        max_width=int(options.get("max_width", 600)),
        binarize=bool(options.get("binarize", True)),
        workers=int(options.get("workers", 0)),
        on_error=options.get("on_error", "stop"),
        progress=False,
        where=f"data.{dataset}.on_error",
    )


def finish(dataset: str, rows: pd.DataFrame, paths: list[Path], script: str, options: Mapping):
    """Images and meta.csv rows of the kept words (``rows``: item, word, writer, source_split)."""
    images, failed = normalize_images(dataset, paths, options)
    rows = rows.drop(index=rows.index[failed]).reset_index(drop=True)
    if rows.empty:
        raise WordDatasetError(f"{dataset}: none of the {len(paths)} word images could be read")
    labels, _ = word_labels(rows["word"].tolist())
    meta = pd.DataFrame(
        {
            "label": labels,
            "label_name": rows["word"],
            "script": script,
            "writer": rows["writer"],
            "pen": "",
            "source_split": rows["source_split"],
            "item": rows["item"],
        }
    )
    counts = meta["source_split"].value_counts().to_dict()
    log.info(
        "%s: %d words (%s), %d distinct, %d writers, images %s",
        dataset,
        len(meta),
        counts,
        meta["label"].nunique(),
        meta["writer"].replace("", np.nan).nunique(),
        images.shape[1:],
    )
    return images, meta[META_COLUMNS + ["item"]]


# --- IAM ------------------------------------------------------------------------------


def first_existing(root: Path, candidates: list[str]) -> Path | None:
    return next((root / c for c in candidates if (root / c).is_file()), None)


def read_iam_words(path: Path) -> pd.DataFrame:
    """words.txt -> id, status, word (the transcription: every field from the 9th on).

    The known broken images (:data:`IAM_BROKEN`) are left out, each skip logged.
    """
    rows = []
    hint = "use the words.txt of the IAM download (ascii.tgz), unmodified"
    for number, line in numbered_lines(path, "utf-8", WordDatasetError, hint):
        if not line.strip() or line.startswith("#"):
            continue
        # a01-000u-00-00 ok 154 408 768 27 51 AT A: id, ok|err, grey, x y w h, tag, word
        fields = line.split(" ")
        if len(fields) < 9 or fields[1] not in ("ok", "err"):
            raise record_error(
                path,
                number,
                line,
                "not a words.txt record ('<id> ok|err <grey> <x> <y> <w> <h> <tag> "
                f"<transcription>'); {hint}",
                WordDatasetError,
            )
        if fields[0] in IAM_BROKEN:
            log.warning(
                "iam: skipped %s (%s:%d): a known broken image of the IAM release, "
                "skipped by public loaders too",
                fields[0],
                path,
                number,
            )
            continue
        rows.append((fields[0], fields[1], " ".join(fields[8:])))
    if not rows:
        raise WordDatasetError(f"{path}: no word records")
    return pd.DataFrame(rows, columns=["item", "status", "word"])


def read_iam_writers(path: Path | None) -> dict[str, str]:
    """forms.txt -> {form id: writer id}; empty (and said in the log) without the file."""
    if path is None:
        log.warning("iam: no ascii/forms.txt: writer ids stay empty")
        return {}
    writers = {}
    hint = "use the forms.txt of the IAM download (ascii.tgz), unmodified"
    for number, line in numbered_lines(path, "utf-8", WordDatasetError, hint):
        if not line.strip() or line.startswith("#"):
            continue
        # a01-000u 000 2 prt 7 5 52 36: form, writer, sentences, segmentation, ...
        fields = line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            raise record_error(
                path,
                number,
                line,
                f"not a forms.txt record ('<form> <writer> ...'); {hint}",
                WordDatasetError,
            )
        writers[fields[0]] = fields[1]
    return writers


def read_iam_partition(root: Path) -> dict[str, str]:
    """{line or form id: train/val/test} from the four list files of the writer-independent
    task (one id per line)."""
    folder = next(
        (
            root / d
            for d in IAM_PARTITION_DIRS
            if all((root / d / f).is_file() for f in IAM_PARTITION)
        ),
        None,
    )
    if folder is None:
        raise WordDatasetError(
            f"iam: the partition files {list(IAM_PARTITION)} are not in {root} (nor in its "
            f"task/ or largeWriterIndependentTextLineRecognitionTask/ folder). Unpack "
            "largeWriterIndependentTextLineRecognitionTask.zip from the IAM download page "
            "into the copy (docs/datasets.md)."
        )
    split_of: dict[str, str] = {}
    for name, split in IAM_PARTITION.items():
        path = folder / name
        hint = "use the list of largeWriterIndependentTextLineRecognitionTask.zip, unmodified"
        for number, line in numbered_lines(path, "utf-8", WordDatasetError, hint):
            entry = line.strip()
            if not entry:
                continue
            if not IAM_ID.fullmatch(entry):
                raise record_error(
                    path,
                    number,
                    line,
                    f"not a line id like a01-000u-00 (or a form id like a01-000u); {hint}",
                    WordDatasetError,
                )
            if split_of.setdefault(entry, split) != split:
                raise record_error(
                    path,
                    number,
                    line,
                    f"also listed in the {split_of[entry]} lists; {hint}",
                    WordDatasetError,
                )
    return split_of


def iam_splits(items: pd.Series, split_of: Mapping[str, str]) -> pd.Series:
    """source_split of each word id: its line's list, else its form's (NaN: neither)."""
    lines = items.str.rsplit("-", n=1).str[0]
    forms = items.str.split("-").str[:2].str.join("-")
    return lines.map(split_of).fillna(forms.map(split_of))


def iam_image(root: Path, item: str) -> Path:
    parts = item.split("-")
    return root / "words" / parts[0] / f"{parts[0]}-{parts[1]}" / f"{item}.png"


def read_iam(files: Mapping, raw: Path, options: Mapping | None = None):
    """IAM word images and meta (see the module docstring); ``files`` is unused (manual)."""
    options = dict(options or {})
    root = source_root("iam", raw, options, "ascii/words.txt and words/")
    words_txt = first_existing(root, ["ascii/words.txt", "words.txt"])
    if words_txt is None:
        raise WordDatasetError(
            f"iam: {root}/ascii/words.txt not found; unpack ascii.tgz of the IAM download "
            "into the copy (data.iam.local_copy)"
        )
    words = read_iam_words(words_txt)
    if options.get("drop_err", False):
        words = words[words["status"] == "ok"]
    split_of = read_iam_partition(root)
    words = words.assign(source_split=iam_splits(words["item"], split_of))
    outside = int(words["source_split"].isna().sum())
    if outside:
        log.info("iam: %d words are on lines outside the partition and are left out", outside)
    words = words.dropna(subset=["source_split"]).reset_index(drop=True)
    if words.empty:
        raise WordDatasetError(f"iam: no word of {words_txt} is on a line of the partition files")
    writers = read_iam_writers(first_existing(root, ["ascii/forms.txt", "forms.txt"]))
    forms = words["item"].str.split("-").str[:2].str.join("-")
    words["writer"] = forms.map(writers).fillna("")
    if options.get("lowercase", True):
        words["word"] = words["word"].str.lower()
    paths = [iam_image(root, item) for item in words["item"]]
    return finish("iam", words, paths, "latin", options)


# --- IFN/ENIT -------------------------------------------------------------------------


def read_tru_word(path: Path) -> str:
    """The ``AW1`` word of an IFN/ENIT ground-truth file (``LBL: AW1:<word>;AW2:...``)."""
    hint = "IFN/ENIT .tru files are Windows-1256; use the files of the release, unmodified"
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        line = decode_line(raw, path, number, IFN_ENCODING, WordDatasetError, hint)
        key, _, value = line.partition(":")
        if key.strip() != "LBL":
            continue
        for token in value.split(";"):
            name, _, word = token.strip().partition(":")
            if name.strip() == "AW1" and word.strip():
                return word.strip()
        raise record_error(
            path, number, line, "the LBL line has no 'AW1:<word>' token", WordDatasetError
        )
    raise WordDatasetError(
        f"{path}: no 'LBL: AW1:<word>;' field; is it an IFN/ENIT .tru ground-truth file?"
    )


def ifn_root(root: Path) -> Path:
    """The folder holding set_a ... : the copy itself, or its data/ (the release's layout,
    ifnenit_v2.0p1e/data/set_a)."""
    if not any(root.glob("set_*")) and any((root / "data").glob("set_*")):
        return root / "data"
    return root


def ifn_image(tru: Path) -> Path | None:
    """The image of a .tru file: set_x/{tif,bmp,png}/<name>.<ext>, or beside the .tru."""
    set_dir = tru.parent.parent if tru.parent.name == "tru" else tru.parent
    for folder in (set_dir / "tif", set_dir / "bmp", set_dir / "png", tru.parent):
        for suffix in IFN_IMAGE_SUFFIXES:
            candidate = folder / f"{tru.stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def ifn_sets(root: Path, wanted) -> dict[str, list[Path]]:
    """{set letter: its .tru files}, every wanted set present and non-empty."""
    found, problems = {}, []
    for letter in wanted:
        folder = root / f"set_{letter}"
        trus = sorted(folder.rglob("*.tru")) if folder.is_dir() else []
        if not trus:
            problems.append(f"set_{letter}/ with tru/*.tru files")
        found[letter] = trus
    if problems:
        raise WordDatasetError(
            f"ifn_enit: {root} lacks {', '.join(problems)}. Unpack the IFN/ENIT sets there, or "
            "list only the sets you have under data.ifn_enit.sets."
        )
    return found


def ifn_partition(rows: pd.DataFrame, options: Mapping) -> pd.Series:
    """train/test per word: the sets in ``test_sets``, else a seeded random ``test_fraction``."""
    test_sets = list(options.get("test_sets") or [])
    if test_sets:
        return rows["set"].map(lambda s: "test" if s in test_sets else "train")
    fraction = float(options.get("test_fraction", 0.25))
    rng = np.random.default_rng(int(options.get("seed", 0)))
    split = np.full(len(rows), "train", dtype=object)
    split[rng.choice(len(rows), size=round(len(rows) * fraction), replace=False)] = "test"
    return pd.Series(split, index=rows.index)


def read_ifn_enit(files: Mapping, raw: Path, options: Mapping | None = None):
    """IFN/ENIT word images and meta (see the module docstring); ``files`` is unused."""
    options = dict(options or {})
    root = ifn_root(source_root("ifn_enit", raw, options, "set_a/ ... set_e/ with tru/ and tif/"))
    wanted = list(options.get("sets") or IFN_SETS)
    unknown = [s for s in options.get("test_sets") or [] if s not in wanted]
    if unknown:
        raise WordDatasetError(f"data.ifn_enit.test_sets {unknown} are not in sets {wanted}")
    rows, paths, missing = [], [], []
    for letter, trus in ifn_sets(root, wanted).items():
        for tru in trus:
            image = ifn_image(tru)
            if image is None:
                missing.append(str(tru))
                continue
            word = read_tru_word(tru)
            writer = tru.stem.split("_")[0] if "_" in tru.stem else ""
            rows.append((f"set_{letter}/{tru.stem}", word, writer, letter))
            paths.append(image)
    if missing and options.get("on_error", "stop") == "stop":
        raise WordDatasetError(
            f"ifn_enit: {len(missing)} .tru file(s) have no image (.tif/.bmp/.png in the set's "
            f"tif/ folder or beside it), e.g. {missing[:3]}. Add the images, or set "
            "data.ifn_enit.on_error: skip to leave those words out."
        )
    for path in missing:
        log.warning("ifn_enit: skipped %s: no image", path)
    frame = pd.DataFrame(rows, columns=["item", "word", "writer", "set"])
    frame["source_split"] = ifn_partition(frame, options)
    return finish("ifn_enit", frame, paths, "arabic", options)
