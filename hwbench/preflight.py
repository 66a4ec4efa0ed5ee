"""Preflight: is every dataset the configured DAG needs on disk and intact? (`make preflight`)

One row per dataset: how it is obtained (download, local copy, registration,
private), its state (ready: present and verified; missing; partial: an
interrupted download's ``.part``; malformed: which file and what is wrong), bytes
present and expected, and the exact next step. A user runs it before booking
GPUs; it reads only what is on disk: no network, and nothing is written under
data/raw (the checks copy nothing, unlike `snakemake prefetch`).

Checksums of downloaded files are cached by path, size and modification time in
a JSON file outside data/raw (:class:`ChecksumCache`), so a rerun over a full
data/raw hashes only what changed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from hwbench.datasets import registry
from hwbench.datasets.download import Digest, check_format, copy_candidates, digest_file, match
from hwbench.datasets.rules import config_datasets, data_options, standin_enabled
from hwbench.store import write_csv, write_json, write_text

log = logging.getLogger("hwbench.preflight")

COLUMNS = [
    "dataset",
    "obtained",
    "state",
    "bytes_present",
    "bytes_expected",
    "problem",
    "next_step",
]
STATES = ("ready", "missing", "partial", "malformed")
# rank of a file's state in its dataset's state: the worst one decides
_SEVERITY = {"ready": 0, "missing": 1, "partial": 2, "malformed": 3}
PREFETCH = "snakemake --cores 1 prefetch (with the same --configfile)"


@dataclass
class Row:
    dataset: str
    obtained: str
    state: str
    bytes_present: int
    bytes_expected: int | None
    problem: str
    next_step: str


class ChecksumCache:
    """Digests of files keyed by resolved path, size and mtime (ns), kept in a JSON file.

    A file whose size and mtime are unchanged is not read again; any change (a
    rewrite, a truncation, a touch) makes it hashed anew.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self.entries: dict = {}
        self.hits = self.misses = 0
        if self.path and self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # a damaged cache only costs a rehash
                log.warning("%s: unreadable checksum cache, starting afresh", self.path)

    def digest(self, path: Path) -> Digest:
        stat = path.stat()
        key = str(path.resolve())
        cached = self.entries.get(key)
        if cached and cached["size"] == stat.st_size and cached["mtime_ns"] == stat.st_mtime_ns:
            self.hits += 1
            return Digest(cached["size"], cached["md5"], cached["sha256"])
        self.misses += 1
        digest = digest_file(path)
        self.entries[key] = {**asdict(digest), "mtime_ns": stat.st_mtime_ns}
        return digest

    def save(self) -> None:
        if self.path:
            write_json(self.path, self.entries)


# --- downloaded datasets -----------------------------------------------------------------


@dataclass
class FileState:
    state: str
    present: int
    problem: str = ""
    path: Path | None = None


def _file_state(spec, entry, raw: Path, local_copy, single: bool, cache) -> FileState:
    """State of one registry file: the first copy the pipeline would take, else its .part."""
    for path, kind, _configured in copy_candidates(spec, entry, local_copy, raw, single):
        if not path.is_file():
            continue
        expect = entry.payload if kind == "payload" else entry
        digest = cache.digest(path)
        problem = match(digest, expect)
        if problem is None and kind == "file":
            try:
                check_format(path, entry.name)
            except ValueError as exc:
                problem = str(exc)
        if problem:
            return FileState("malformed", digest.size, f"{path}: {problem}", path)
        return FileState("ready", digest.size, path=path)
    part = raw / f"{entry.name}.part"
    if part.is_file():
        size = part.stat().st_size
        problem = f"{part}: {size:,} bytes of an interrupted download"
        return FileState("partial", size, problem, part)
    return FileState("missing", 0, f"{entry.name} not found")


def download_row(spec, raw: Path, options: Mapping, cache: ChecksumCache) -> Row:
    local_copy = options.get("local_copy")
    files = spec.files_for(options.get("variant"))
    # a file with no mirror (behind a login, e.g. Kaggle's) is obtained by registering
    obtained = "local copy" if local_copy else "download"
    if not local_copy and not all(f.urls for f in files):
        obtained = "registration"
    expected = sum(f.size or 0 for f in files) if all(f.size for f in files) else None
    key = f"data.{spec.name}.local_copy"
    try:
        states = [(f, _file_state(spec, f, raw, local_copy, len(files) == 1, cache)) for f in files]
    except FileNotFoundError as exc:  # local_copy names no file or folder, or an odd file
        return Row(spec.name, obtained, "malformed", 0, expected, str(exc), f"fix {key}")
    present = sum(s.present for _, s in states)
    worst = max((s.state for _, s in states), key=_SEVERITY.get)
    bad = [(f, s) for f, s in states if s.state == worst]
    if worst == "ready":
        return Row(spec.name, obtained, "ready", present, expected, "", "none")
    problem = "; ".join(s.problem for _, s in bad)
    if worst == "malformed":
        step = (
            f"replace {', '.join(str(s.path) for _, s in bad)} with an intact copy "
            f"(or delete it and run {PREFETCH})"
        )
        if local_copy:
            step += f"; or point {key} at an intact copy"
    elif worst == "partial":
        step = f"{PREFETCH} resumes it from {bad[0][0].urls[0]}"
    elif all(f.urls for f, _ in bad):
        names = ", ".join(f.name for f, _ in bad)
        urls = "; ".join(f.urls[0] for f, _ in bad)
        step = f"{PREFETCH} downloads {names} ({urls}); or put the files in {raw}/ or set {key}"
    else:
        names = ", ".join(f.name for f, _ in bad)
        step = (
            f"{names}: no public mirror; get it ({spec.homepage}; docs/datasets.md) and put "
            f"it in {raw}/ or set {key}"
        )
    return Row(spec.name, obtained, worst, present, expected, problem, step)


# --- user-supplied datasets --------------------------------------------------------------


def tree_bytes(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def _iam_check(root: Path, options: Mapping) -> tuple[int, str]:
    """(bytes of the files read, problem or '') of a user's IAM copy."""
    from hwbench.datasets import words

    words_txt = words.first_existing(root, ["ascii/words.txt", "words.txt"])
    if words_txt is None:
        return 0, f"{root}/ascii/words.txt not found (unpack ascii.tgz into the copy)"
    table = words.read_iam_words(words_txt)
    split_of = words.read_iam_partition(root)
    forms = words.first_existing(root, ["ascii/forms.txt", "forms.txt"])
    words.read_iam_writers(forms)
    used = table["item"][words.iam_splits(table["item"], split_of).notna()]  # what is read
    images = [words.iam_image(root, item) for item in used]
    absent = [p for p in images if not p.is_file()]
    size = tree_bytes([words_txt, *([forms] if forms else []), *images])
    if absent:
        return size, (
            f"{len(absent)} of {len(images)} word images of {words_txt} are missing, "
            f"e.g. {absent[0]} (unpack words.tgz into {root}/words/)"
        )
    return size, ""


def _ifn_check(root: Path, options: Mapping) -> tuple[int, str]:
    from hwbench.datasets import words

    root = words.ifn_root(root)
    wanted = list(options.get("sets") or words.IFN_SETS)
    size, absent, total = 0, [], 0
    for trus in words.ifn_sets(root, wanted).values():
        for tru in trus:
            total += 1
            words.read_tru_word(tru)
            image = words.ifn_image(tru)
            if image is None:
                absent.append(tru)
            size += tree_bytes([tru, *([image] if image else [])])
    if absent:
        return size, f"{len(absent)} of {total} .tru files have no image, e.g. {absent[0]}"
    return size, ""


def _amharic_check(root: Path, options: Mapping) -> tuple[int, str]:
    from hwbench.datasets.manual import scan_class_folders
    from hwbench.datasets.vocab import AMHARIC77

    found = scan_class_folders(root, AMHARIC77, "amharic", "data.amharic.local_copy")
    return tree_bytes(p for images in found.values() for p in images), ""


# dataset -> (its copy's folder under data/raw/<name>/ when local_copy is unset,
#             what the copy must hold, the check)
MANUAL = {
    "iam": (
        "",
        "words.tgz, ascii.tgz and largeWriterIndependentTextLineRecognitionTask.zip unpacked",
        _iam_check,
    ),
    "ifn_enit": ("", "the unpacked sets set_a ... set_e (tru/ and tif/ or bmp/)", _ifn_check),
    "amharic": ("classes", "77 class folders (0-76 or the characters) of images", _amharic_check),
}


def manual_row(spec, raw: Path, options: Mapping) -> Row:
    from hwbench.datasets.manual import ManualDatasetError

    sub, what, check = MANUAL[spec.name]
    obtained = "private" if spec.name == "amharic" else "registration"
    key = f"data.{spec.name}.local_copy"
    root = Path(options["local_copy"]).expanduser() if options.get("local_copy") else raw / sub
    if not root.is_dir():
        step = (
            f"{spec.licence} ({spec.homepage}) Put {what} at {root}/, or set {key} to the "
            "folder holding them"
        )
        return Row(spec.name, obtained, "missing", 0, None, f"{root} not found", step)
    try:
        size, problem = check(root, options)
    except ManualDatasetError as exc:  # WordDatasetError is one: names file (and line)
        size, problem = tree_bytes(root.rglob("*")), str(exc)
    if problem:
        step = f"fix the copy at {root} ({key}) as the problem says; docs/datasets.md"
        return Row(spec.name, obtained, "malformed", size, None, problem, step)
    return Row(spec.name, obtained, "ready", size, None, "", "none")


def supplied_row(name: str, raw_root: Path) -> Row:
    """An image dataset the user supplied at data/raw/<name>/ (config image_datasets)."""
    manifest = raw_root / name / "manifest.csv"
    if manifest.is_file():
        return Row(name, "local copy", "ready", manifest.stat().st_size, None, "", "none")
    step = f"put the images and {manifest} there (docs/preprocess.md), or drop it from config"
    return Row(name, "local copy", "missing", 0, None, f"{manifest} not found", step)


# --- the report --------------------------------------------------------------------------


def needed(config: Mapping) -> list[str]:
    """Registered datasets the configured DAG reads (none in a rehearsal: stand-ins)."""
    if standin_enabled(dict(config)):
        return []
    return config_datasets(dict(config))


def preflight(
    config: Mapping, raw_root: str | os.PathLike = "data/raw", cache: ChecksumCache | None = None
) -> pd.DataFrame:
    """The preflight table of ``config`` (COLUMNS, one row per dataset)."""
    raw_root = Path(raw_root)
    cache = cache or ChecksumCache(None)
    rows = []
    for name in needed(config):
        spec = registry.get(name)
        options = data_options(dict(config), name)
        raw = registry.raw_dir(name, raw_root)
        if spec.manual:
            rows.append(manual_row(spec, raw, options))
        else:
            rows.append(download_row(spec, raw, options, cache))
    if not standin_enabled(dict(config)):
        rows += [supplied_row(n, raw_root) for n in config.get("image_datasets") or []]
    frame = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    frame["bytes_expected"] = frame["bytes_expected"].astype("Int64")
    return frame


def markdown(frame: pd.DataFrame, cache: ChecksumCache, rehearsal: bool) -> str:
    counts = frame["state"].value_counts().to_dict()
    summary = ", ".join(f"{counts[s]} {s}" for s in STATES if s in counts) or "no dataset"
    lines = [
        "# Preflight: the datasets of this config",
        "",
        f"{len(frame)} datasets: {summary}. Read from disk only (no network); "
        f"checksums: {cache.misses} computed, {cache.hits} from the cache.",
        "",
    ]
    if rehearsal:
        lines += ["A rehearsal (data.standin.enabled) needs no real dataset.", ""]
    shown = frame.fillna({"bytes_expected": 0}).astype({"bytes_expected": "int64"})
    lines.append(shown.to_markdown(index=False))
    return "\n".join(lines) + "\n"


def write_preflight(
    config: Mapping,
    csv_path: str | os.PathLike,
    md_path: str | os.PathLike,
    cache_path: str | os.PathLike | None,
    raw_root: str | os.PathLike = "data/raw",
) -> pd.DataFrame:
    """Write the preflight table as csv and md; the .csv (the rule's target) last."""
    cache = ChecksumCache(cache_path)
    frame = preflight(config, raw_root, cache)
    cache.save()
    write_text(md_path, markdown(frame, cache, standin_enabled(dict(config))))
    write_csv(csv_path, frame)
    for row in frame.itertuples():
        log.info("%s: %s (%s) %s", row.dataset, row.state, row.obtained, row.problem)
    return frame
