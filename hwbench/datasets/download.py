"""Verified, resumable downloads and local copies of registered dataset files.

A file is streamed to ``<name>.part`` beside its destination, resumed with an
HTTP Range request after a dropped connection, retried with exponential
backoff, and moved into place only after its size, checksum and format check
out. A mismatch removes only that partial file and names the mirror that
served it. When every mirror fails the error lists what each one did and where
a copy can be placed by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
import urllib3
from tqdm import tqdm

from hwbench.datasets.registry import DatasetSpec, Payload, RemoteFile

log = logging.getLogger("hwbench.datasets")

USER_AGENT = "hwbench-dataset-fetcher/0.1 (+https://github.com/hwbench; research benchmark)"
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No mirror delivered a file that verifies; the message says what to do."""


class ChecksumError(ValueError):
    """A file (download or local copy) does not match its registry entry."""


@dataclass
class Digest:
    size: int
    md5: str
    sha256: str


@dataclass
class Verified:
    """What was checked about a file now in data/raw (written as JSON by the rule)."""

    dataset: str
    file: str  # registry name
    path: str  # file name under data/raw/<dataset>/ (the payload name for a decompressed copy)
    size: int
    md5: str
    sha256: str
    checked: str  # "sha256", "md5" or "size+format" (unverified registry entry)
    source: str  # URL or local path it came from

    def to_dict(self) -> dict:
        return asdict(self)


def digest_file(path: str | os.PathLike) -> Digest:
    """Size, MD5 and SHA-256 of a file in one pass."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return Digest(size, md5.hexdigest(), sha.hexdigest())


_MAGIC = {
    ".gz": (b"\x1f\x8b",),
    ".zip": (b"PK\x03\x04", b"PK\x05\x06"),
    ".rar": (b"Rar!\x1a\x07",),
}


def check_format(path: str | os.PathLike, name: str) -> None:
    """Cheap format sniff by extension: catches an HTML error page saved as data."""
    head = _head(path)
    for suffix, magics in _MAGIC.items():
        if name.endswith(suffix) and not head.startswith(magics):
            raise ChecksumError(
                f"{path}: not a {suffix} file (starts with {head[:8]!r}); "
                "a server may have sent an error page instead of the data"
            )
    if name.endswith(".log"):
        with open(path, "rb") as stream:
            sample = stream.read(4096)
        if b"\x00" in sample or sample.lstrip().lower().startswith(b"<"):
            raise ChecksumError(f"{path}: expected a text checksum log, got binary or HTML")


def _head(path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(16)


def _expected(entry: RemoteFile | Payload) -> str:
    parts = [f"{entry.size:,} bytes" if entry.size else "size unknown"]
    if entry.sha256:
        parts.append(f"sha256 {entry.sha256}")
    if entry.md5:
        parts.append(f"md5 {entry.md5}")
    return ", ".join(parts)


def match(digest: Digest, entry: RemoteFile | Payload) -> str | None:
    """Why ``digest`` does not match ``entry`` (None when it matches)."""
    if entry.size is not None and digest.size != entry.size:
        return f"{digest.size:,} bytes, expected {entry.size:,}"
    if entry.sha256 and digest.sha256 != entry.sha256:
        return f"sha256 {digest.sha256}, expected {entry.sha256}"
    if entry.md5 and digest.md5 != entry.md5:
        return f"md5 {digest.md5}, expected {entry.md5}"
    return None


def checked_by(entry: RemoteFile | Payload) -> str:
    if entry.sha256:
        return "sha256"
    if entry.md5:
        return "md5"
    return "size+format" if entry.size else "format"


def _warn_unverified(spec: DatasetSpec, entry, digest: Digest, path) -> None:
    if not (entry.sha256 or entry.md5):
        log.warning(
            "%s/%s: the registry has no published checksum for this file, so only its %s "
            "could be checked. Its sha256 is %s (size %d): pin it in "
            "hwbench/datasets/registry.py once you trust this copy.",
            spec.name,
            entry.name,
            "size and format" if entry.size else "format",
            digest.sha256,
            digest.size,
        )


def placement_hint(spec: DatasetSpec, entry: RemoteFile, raw: Path) -> str:
    names = [entry.name] + ([entry.payload.name] if entry.payload else []) + list(entry.aliases)
    alt = " (or, decompressed, " + entry.payload.name + ")" if entry.payload else ""
    return (
        f"Place a copy at {raw / entry.name}{alt}, or point the config key "
        f"data.{spec.name}.local_copy at the file or at a folder holding "
        f"{' / '.join(dict.fromkeys(names))}. Licence: {spec.licence}"
    )


# ---------------------------------------------------------------- local copies


def _candidates(entry: RemoteFile, local_copy: str | None, raw: Path, single: bool):
    """(path, kind) pairs where a copy of ``entry`` may already be; kind 'file' or 'payload'."""
    names = [(entry.name, "file")] + [(a, "file") for a in entry.aliases]
    if entry.payload:
        names.append((entry.payload.name, "payload"))
    out = []
    if local_copy:
        local = Path(local_copy).expanduser()
        if local.is_dir():
            out += [(local / n, kind) for n, kind in names]
        elif local.is_file():
            by_name = {n: kind for n, kind in names}
            if local.name in by_name:
                out.append((local, by_name[local.name]))
            elif single:
                kind = "payload" if entry.payload and not _is_gzip(local) else "file"
                out.append((local, kind))
        else:
            raise FileNotFoundError(
                f"config data.*.local_copy = {local_copy!r}: no such file or folder"
            )
    out += [(raw / n, kind) for n, kind in names]
    return out


def _is_gzip(path: Path) -> bool:
    return _head(path).startswith(b"\x1f\x8b")


def _verify_local(spec, entry, path: Path, kind: str) -> Digest:
    expect = entry.payload if kind == "payload" else entry
    digest = digest_file(path)
    problem = match(digest, expect)
    if problem:
        raise ChecksumError(
            f"{path}: does not match {spec.name}/{expect.name} ({problem}). Expected "
            f"{_expected(expect)}. Replace it with an intact copy; nothing was deleted."
        )
    if kind == "file":
        check_format(path, entry.name)
    _warn_unverified(spec, expect, digest, path)
    return digest


def _copy_into(src: Path, dest: Path) -> None:
    if src.resolve() == dest.resolve():
        return
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, part)
    os.replace(part, dest)


def find_local(
    spec: DatasetSpec,
    entry: RemoteFile,
    raw: Path,
    local_copy: str | None,
    variant: str | None = None,
):
    """A verified copy already on disk (config ``local_copy`` or data/raw), or None."""
    # A local_copy file with another name is taken only when there is no doubt
    # which registry file it stands for.
    single = len(spec.files_for(variant)) == 1
    for path, kind in _candidates(entry, local_copy, raw, single):
        if not path.is_file():
            continue
        digest = _verify_local(spec, entry, path, kind)
        name = entry.name if kind == "file" else entry.payload.name
        _copy_into(path, raw / name)
        expect = entry if kind == "file" else entry.payload
        return Verified(
            spec.name,
            entry.name,
            name,
            digest.size,
            digest.md5,
            digest.sha256,
            checked_by(expect),
            str(path),
        )
    return None


# ------------------------------------------------------------------ downloads


class _MirrorFailed(Exception):
    """This mirror cannot deliver the file; try the next one."""


def _stream_once(session, url: str, part: Path, entry: RemoteFile, timeout: float, progress):
    """One HTTP attempt, appending to ``part`` from where it stops. Returns True when complete."""
    offset = part.stat().st_size if part.exists() else 0
    if entry.size is not None and offset > entry.size:
        part.unlink()
        offset = 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416 and offset and offset == entry.size:
            return True  # the partial file is already whole
        if response.status_code == 416:
            part.unlink()
            raise ConnectionError(f"range {offset}- refused (416); restarting from 0")
        if response.status_code in (401, 403, 404, 410):
            raise _MirrorFailed(f"HTTP {response.status_code} {response.reason}")
        response.raise_for_status()
        if offset and response.status_code != 206:
            log.info("%s ignored the Range request; restarting from byte 0", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = entry.size or (offset + int(length) if length else None)
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as stream,
            progress(total=total, initial=offset, desc=entry.name) as bar,
        ):
            received = 0
            # Raw bytes (no Content-Encoding decoding: a .gz must stay as served),
            # read1 so a dropped connection keeps every byte that arrived.
            while block := response.raw.read1(CHUNK, decode_content=False):
                stream.write(block)
                stream.flush()
                received += len(block)
                bar.update(len(block))
        if length is not None and received < int(length):
            raise ConnectionError(f"connection closed after {offset + received:,} bytes")
    return True


def download(
    spec: DatasetSpec,
    entry: RemoteFile,
    raw: Path,
    *,
    timeout: float = 60.0,
    retries: int = 4,
    backoff: float = 2.0,
    progress=None,
    session=None,
) -> Verified:
    """Fetch ``entry`` into ``raw`` from its mirrors, verified, or raise DownloadError."""
    raw.mkdir(parents=True, exist_ok=True)
    dest, part = raw / entry.name, raw / (entry.name + ".part")
    progress = progress or _tqdm
    session = session or requests.Session()
    tried = []
    for url in entry.urls:
        failure = _transfer(session, url, part, entry, timeout, retries, backoff, progress)
        if failure:
            tried.append(f"{url}: {failure}")
            continue
        digest = digest_file(part)
        problem = match(digest, entry)
        if problem is None:
            try:
                check_format(part, entry.name)
            except ChecksumError as exc:
                problem = str(exc)
        if problem:
            part.unlink()
            msg = f"served {digest.size:,} bytes that do not verify ({problem}); removed {part}"
            log.error("%s: %s", url, msg)
            tried.append(f"{url}: {msg}")
            continue
        os.replace(part, dest)
        _warn_unverified(spec, entry, digest, dest)
        return Verified(
            spec.name,
            entry.name,
            entry.name,
            digest.size,
            digest.md5,
            digest.sha256,
            checked_by(entry),
            url,
        )
    raise DownloadError(
        f"could not fetch {spec.name}/{entry.name} ({_expected(entry)}). Tried:\n  "
        + "\n  ".join(tried or ["(no mirror URLs registered)"])
        + "\n"
        + placement_hint(spec, entry, raw)
    )


def _transfer(session, url, part, entry, timeout, retries, backoff, progress) -> str | None:
    """Stream ``url`` into ``part`` with retries; None when complete, else why not."""
    outcome = None
    for attempt in range(retries + 1):
        try:
            _stream_once(session, url, part, entry, timeout, progress)
            return None
        except _MirrorFailed as exc:
            return str(exc)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"
            if _unreachable(exc) and attempt >= 1:
                return f"unreachable after {attempt + 1} attempts ({outcome})"
            if attempt < retries:
                wait = backoff * 2**attempt
                log.warning(
                    "%s: %s; retry %d/%d in %.1fs", url, outcome, attempt + 1, retries, wait
                )
                time.sleep(wait)
    return f"gave up after {retries + 1} attempts (last: {outcome})"


def _unreachable(exc: Exception) -> bool:
    """No connection could be made at all (offline, DNS, refused): not worth many retries."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and any(
        key in text for key in ("NameResolutionError", "NewConnectionError", "Connection refused")
    )


def _tqdm(**kwargs):
    return tqdm(unit="B", unit_scale=True, unit_divisor=1024, mininterval=2.0, **kwargs)


def fetch(
    spec: DatasetSpec,
    name: str,
    raw: str | os.PathLike,
    local_copy: str | None = None,
    variant: str | None = None,
    **download_options,
) -> Verified:
    """Make ``data/raw/<dataset>/<name>`` present and verified; return what was checked.

    Order: a local copy (config ``local_copy``, or a file already in ``raw``,
    compressed or decompressed), then the mirrors. Never deletes anything in
    ``raw`` except this file's own ``.part``.
    """
    raw = Path(raw)
    entry = spec.file(name)
    found = find_local(spec, entry, raw, local_copy, variant)
    if found is not None:
        log.info("%s/%s: using verified copy %s (%s)", spec.name, name, found.source, found.checked)
        return found
    return download(spec, entry, raw, **download_options)


def open_payload(path: str | os.PathLike):
    """Open a file that may be gzip-compressed (readers accept either form)."""
    path = Path(path)
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")
