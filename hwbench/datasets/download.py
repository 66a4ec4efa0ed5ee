"""Verified, resumable downloads and local copies of registered dataset files.

A file is streamed to ``<name>.part`` beside its destination, resumed with an
HTTP Range request after a dropped connection, retried with exponential
backoff, and moved into place only after its size, checksum and format check
out. A server cannot make it grow past the registered size (or, for a file of
unknown size, ``data.download.max_unregistered_mb``), splice bytes with a 206
answer whose ``Content-Range`` does not continue the partial file or whose body
is longer or shorter than that range (the partial file is discarded and the
transfer restarts from byte 0; a second such answer fails that mirror, by name),
or keep a
job alive by trickling bytes: every file has an overall deadline
(``data.download.deadline_s``). A mismatch removes only that partial file and names the mirror that
served it. When every mirror fails the error lists what each one did and where
a copy can be placed by hand.

A registry entry with neither a size nor a checksum (some real mirrors publish
none) is accepted with a warning that prints its sha256 to pin, and only when
the transfer is self-consistent: the file must have the length the mirror
stated (the Content-Length of a whole answer, the total of a Content-Range).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
import urllib3
from tqdm import tqdm

from hwbench.datasets.registry import DatasetSpec, Payload, RemoteFile
from hwbench.store import StorageError, current_umask, storage_faults

log = logging.getLogger("hwbench.datasets")

USER_AGENT = "hwbench-dataset-fetcher/0.1 (+https://github.com/hwbench; research benchmark)"
CHUNK = 1 << 20
# Defaults of the config keys data.download.deadline_s and max_unregistered_mb.
DEADLINE_S = 4 * 3600.0
MAX_UNREGISTERED_BYTES = 8 * 2**30


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


def _known_names(spec: DatasetSpec) -> list[str]:
    names = []
    for f in spec.files:
        names += [f.name, *f.aliases] + ([f.payload.name] if f.payload else [])
    return names


def copy_candidates(
    spec: DatasetSpec, entry: RemoteFile, local_copy: str | None, raw: Path, single: bool
):
    """(path, kind, configured) where a copy of ``entry`` may already be: kind 'file' or
    'payload'; configured when the path comes from the config's ``local_copy``."""
    names = [(entry.name, "file")] + [(a, "file") for a in entry.aliases]
    if entry.payload:
        names.append((entry.payload.name, "payload"))
    out = []
    if local_copy:
        local = Path(local_copy).expanduser()
        if local.is_dir():
            out += [(local / n, kind, True) for n, kind in names]
        elif local.is_file():
            by_name = {n: kind for n, kind in names}
            if local.name in by_name:
                out.append((local, by_name[local.name], True))
            elif single:
                kind = "payload" if entry.payload and not _is_gzip(local) else "file"
                out.append((local, kind, True))
            elif local.name not in _known_names(spec):
                raise FileNotFoundError(
                    f"config data.{spec.name}.local_copy = {local_copy!r}: the file's name is "
                    f"none of {spec.name}'s files ({', '.join(_known_names(spec))}), so it "
                    "cannot tell which one it is. Rename it to its registry name, or point "
                    "local_copy at a folder holding the files under those names."
                )
        else:
            raise FileNotFoundError(
                f"config data.{spec.name}.local_copy = {local_copy!r}: no such file or folder. "
                f"Fix the path, or set it to null to download {spec.name} from its mirrors."
            )
    out += [(raw / n, kind, False) for n, kind in names]
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
    # The same file reached by another path (a bind mount, a hard link, the
    # store folder given as local_copy): nothing to copy.
    if src.resolve() == dest.resolve() or (dest.exists() and os.path.samefile(src, dest)):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    # a fresh temporary name: a fixed one may be ``src`` itself under another path
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".copy", dir=dest.parent)
    os.close(fd)
    try:
        with storage_faults(dest):
            shutil.copyfile(src, tmp)
        # mkstemp creates the file 0600; a copy gets the mode any new file would
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    for path, kind, configured in copy_candidates(spec, entry, local_copy, raw, single):
        if not path.is_file():
            continue
        try:
            digest = _verify_local(spec, entry, path, kind)
        except ChecksumError as exc:
            if configured:
                raise ChecksumError(
                    f"config data.{spec.name}.local_copy = {local_copy!r}: {exc} Or fix "
                    f"data.{spec.name}.local_copy, or set it to null to download "
                    f"{spec.name} from its mirrors."
                ) from exc
            raise
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


class _DeadlineExceeded(Exception):
    """The file's overall deadline passed; stop trying every mirror."""


@dataclass
class _Budget:
    """What one file's transfer may use: bytes, wall-clock time; and what it inherited."""

    max_bytes: int
    deadline: float  # time.monotonic() value
    limit_text: str
    inherited: int = 0  # bytes of the .part that came from an earlier attempt or run
    # The file's length as the mirror stated it (Content-Length of a whole answer,
    # or a Content-Range total): what a file the registry has no size for must match.
    stated: int | None = None
    bad_ranges: int = 0  # 206 answers refused from this mirror (a second one fails it)

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise _DeadlineExceeded


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) of a ``Content-Range: bytes a-b/n`` header (total None for
    ``*``); None when it is missing or malformed."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, length = value[6:].partition("/")
    first, _, last = span.partition("-")
    if not (first.isdigit() and last.isdigit()) or int(last) < int(first):
        return None
    if not (length.isdigit() or length == "*"):
        return None
    return int(first), int(last), int(length) if length.isdigit() else None


def _range_problem(response, offset: int, total: int | None) -> tuple[str | None, int]:
    """Why a 206 answer to ``Range: bytes=<offset>-`` cannot be appended, and its body length.

    The answer must say which bytes it holds (``Content-Range``), start at the
    requested offset, agree with the file's known total, and its body
    (``Content-Length``) must be exactly that range: a server that claims the
    offset but sends the file from byte 0 would otherwise splice the two.
    """
    header = response.headers.get("Content-Range")
    parsed = _content_range(header)
    if parsed is None:
        return f"asked for bytes {offset}- but the answer's Content-Range is {header!r}", 0
    first, last, stated_total = parsed
    span = last - first + 1
    if first != offset:
        return f"asked for bytes {offset}- but the answer's Content-Range starts at {first}", span
    if total is not None and stated_total is not None and stated_total != total:
        return f"Content-Range {header!r} gives a total of {stated_total:,}, not {total:,}", span
    if total is not None and last + 1 != total:
        return f"Content-Range {header!r} does not run to the end of the {total:,} bytes", span
    length = response.headers.get("Content-Length")
    if length is not None and (not length.isdigit() or int(length) != span):
        return (
            f"Content-Range {header!r} holds {span:,} bytes but Content-Length is {length}",
            span,
        )
    return None, span


def _refuse_range(part: Path, budget: _Budget, problem: str) -> Exception:
    """Discard the partial file after a lying 206: retry from byte 0, or fail the mirror."""
    if part.exists():
        part.unlink()
    budget.inherited = 0
    budget.bad_ranges += 1
    if budget.bad_ranges > 1:
        return _MirrorFailed(
            f"{problem}; a second inconsistent range answer, so this mirror is not used "
            f"for this file (removed {part})"
        )
    return ConnectionError(f"{problem}; discarded the partial file, restarting from byte 0")


def _stream_once(session, url, part: Path, entry: RemoteFile, timeout, progress, budget: _Budget):
    """One HTTP attempt, appending to ``part`` from where it stops. Returns True when complete."""
    offset = part.stat().st_size if part.exists() else 0
    if offset > budget.max_bytes:
        part.unlink()
        offset = budget.inherited = 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416 and offset and offset == entry.size:
            return True  # the partial file is already whole
        if response.status_code == 416:
            part.unlink()
            budget.inherited = 0
            raise ConnectionError(f"range {offset}- refused (416); restarting from 0")
        if response.status_code in (401, 403, 404, 410):
            raise _MirrorFailed(f"HTTP {response.status_code} {response.reason}")
        response.raise_for_status()
        if offset and response.status_code != 206:
            log.info("%s ignored the Range request; restarting from byte 0", url)
            offset = budget.inherited = 0
        length = response.headers.get("Content-Length")
        body = int(length) if length and length.isdigit() else None
        if offset:
            problem, body = _range_problem(response, offset, entry.size or budget.stated)
            if problem:  # appending would splice other bytes onto the partial file
                raise _refuse_range(part, budget, problem)
            budget.stated = (
                budget.stated or _content_range(response.headers.get("Content-Range"))[2]
            )
        elif body is not None:
            budget.stated = body
        total = entry.size or budget.stated
        mode = "ab" if offset else "wb"
        with (
            storage_faults(part),  # a full disk stops here, naming part; its bytes are kept
            open(part, mode) as stream,
            progress(total=total, initial=offset, desc=entry.name) as bar,
        ):
            received = 0
            # Raw bytes (no Content-Encoding decoding: a .gz must stay as served),
            # read1 so a dropped connection keeps every byte that arrived.
            while block := response.raw.read1(CHUNK, decode_content=False):
                if offset and received + len(block) > body:
                    stream.close()
                    raise _refuse_range(
                        part, budget, f"the 206 body runs past the {body:,} bytes of its range"
                    )
                if offset + received + len(block) > budget.max_bytes:
                    stream.close()
                    part.unlink()
                    raise _MirrorFailed(
                        f"sent more than {budget.limit_text}; stopped and removed {part}"
                    )
                stream.write(block)
                stream.flush()
                received += len(block)
                bar.update(len(block))
                budget.check_time()
        if body is not None and received < body:
            raise ConnectionError(f"connection closed after {offset + received:,} bytes")
    return True


def _verify_part(spec, entry: RemoteFile, part: Path) -> tuple[Digest, str | None]:
    digest = digest_file(part)
    problem = match(digest, entry)
    if problem is None:
        try:
            check_format(part, entry.name)
        except ChecksumError as exc:
            problem = str(exc)
    return digest, problem


def _verified(spec, entry, digest: Digest, source: str) -> Verified:
    return Verified(
        spec.name,
        entry.name,
        entry.name,
        digest.size,
        digest.md5,
        digest.sha256,
        checked_by(entry),
        source,
    )


def _stale_part(spec, entry: RemoteFile, part: Path, dest: Path) -> Verified | None:
    """A full-size ``.part`` left by an earlier run: use it if it verifies, else remove it.

    Without this the next request asks for bytes past the end, the server answers
    416, and the old bytes would be blamed on the mirror.
    """
    if not part.exists() or entry.size is None or part.stat().st_size < entry.size:
        return None
    digest, problem = _verify_part(spec, entry, part)
    if problem:
        log.warning(
            "%s: a partial file left by an earlier run does not verify (%s); removed it, "
            "downloading again",
            part,
            problem,
        )
        part.unlink()
        return None
    os.replace(part, dest)
    _warn_unverified(spec, entry, digest, dest)
    return _verified(spec, entry, digest, f"{part} (completed by an earlier run)")


def download(
    spec: DatasetSpec,
    entry: RemoteFile,
    raw: Path,
    *,
    timeout: float = 60.0,
    retries: int = 4,
    backoff: float = 2.0,
    deadline_s: float = DEADLINE_S,
    max_unregistered_bytes: int = MAX_UNREGISTERED_BYTES,
    progress=None,
    session=None,
) -> Verified:
    """Fetch ``entry`` into ``raw`` from its mirrors, verified, or raise DownloadError."""
    raw.mkdir(parents=True, exist_ok=True)
    dest, part = raw / entry.name, raw / (entry.name + ".part")
    progress = progress or _tqdm
    session = session or requests.Session()
    found = _stale_part(spec, entry, part, dest)
    if found is not None:
        return found
    if entry.size is not None:
        limit = (entry.size, f"the registered {entry.size:,} bytes")
    else:
        limit = (
            max_unregistered_bytes,
            f"{max_unregistered_bytes:,} bytes, the cap for a file whose size the registry "
            "does not know (config data.download.max_unregistered_mb raises it)",
        )
    budget = _Budget(limit[0], time.monotonic() + deadline_s, limit[1])
    tried = []
    for url in entry.urls:
        budget.inherited = part.stat().st_size if part.exists() else 0
        try:
            failure = _transfer(
                session, url, part, entry, timeout, retries, backoff, progress, budget
            )
        except _DeadlineExceeded:
            tried.append(
                f"{url}: still incomplete when the deadline of {deadline_s:g} s passed "
                f"({part.stat().st_size if part.exists() else 0:,} bytes kept in {part}; "
                "the next run resumes them). Raise data.download.deadline_s for a slow link"
            )
            break
        if failure:
            tried.append(f"{url}: {failure}")
            continue
        digest, problem = _verify_part(spec, entry, part)
        if problem is None and entry.size is None and budget.stated not in (None, digest.size):
            problem = f"{digest.size:,} bytes, but the mirror stated {budget.stated:,}"
        if problem:
            part.unlink()
            inherited = (
                f" (the first {budget.inherited:,} came from a partial file of an earlier "
                "attempt, resumed)"
                if budget.inherited
                else ""
            )
            msg = (
                f"served {digest.size:,} bytes{inherited} that do not verify ({problem}); "
                f"removed {part}"
            )
            log.error("%s: %s", url, msg)
            tried.append(f"{url}: {msg}")
            continue
        os.replace(part, dest)
        _warn_unverified(spec, entry, digest, dest)
        return _verified(spec, entry, digest, url)
    raise DownloadError(
        f"could not fetch {spec.name}/{entry.name} ({_expected(entry)}). Tried:\n  "
        + "\n  ".join(tried or ["(no mirror URLs registered)"])
        + "\n"
        + placement_hint(spec, entry, raw)
    )


def _transfer(session, url, part, entry, timeout, retries, backoff, progress, budget) -> str | None:
    """Stream ``url`` into ``part`` with retries; None when complete, else why not."""
    outcome = None
    for attempt in range(retries + 1):
        budget.check_time()
        try:
            _stream_once(session, url, part, entry, timeout, progress, budget)
            return None
        except _MirrorFailed as exc:
            return str(exc)
        except StorageError:
            raise  # the local disk, not the mirror: no retry, no other mirror helps
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"
            if _unreachable(exc) and attempt >= 1:
                return f"unreachable after {attempt + 1} attempts ({outcome})"
            if attempt < retries:
                wait = min(backoff * 2**attempt, max(0.0, budget.deadline - time.monotonic()))
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
