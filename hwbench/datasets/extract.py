"""Safe archive extraction: zip, tar(.gz) and RAR.

Members that would land outside the target folder (absolute paths, ``..``,
drive letters) and links are refused before anything is written. A truncated
or corrupt archive is reported as such, naming the file; a tar.gz is read to
its gzip trailer, so its CRC and length are checked too. RAR needs an external
tool: bsdtar (libarchive), unar, 7z or unrar, whichever is on PATH.

Size limits (archive bombs): members are streamed, never held whole, and the
unpacked bytes of one archive may not exceed ``max_ratio`` times the archive's
size (at least :data:`FLOOR_BYTES`), nor ``max_unpacked_bytes``, nor hold more
than ``max_members`` members. Where the registry knows the unpacked size (the
IDX payload of a ``.gz``) that size is the cap. Declared member sizes are
checked before a byte is written; zipfile and tarfile never return more than a
member declares. The config keys ``data.extract.max_ratio``,
``data.extract.max_unpacked_mb`` and ``data.extract.max_members`` raise the
limits (:func:`limits` sets them for a job; docs/security.md).
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20
# Any archive may unpack to this much whatever its size: tiny archives of small
# files (fixtures, label files) are not bombs.
FLOOR_BYTES = 16 * 2**20


class ArchiveError(RuntimeError):
    """An archive cannot be read."""


class TruncatedArchiveError(ArchiveError):
    """The archive ends early (an interrupted download or copy)."""


class UnsafeArchiveError(ArchiveError):
    """A member would be written outside the target folder, or is a link."""


class MissingToolError(ArchiveError):
    """No program able to read this archive format is installed."""


class ArchiveTooLargeError(ArchiveError):
    """The archive unpacks to more than the limits allow (an archive bomb, or a limit to raise)."""


# ------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """How much one archive may unpack to (config ``data.extract``)."""

    max_ratio: float = 100.0  # unpacked bytes per archive byte
    max_unpacked_bytes: int = 16 * 2**30
    max_members: int = 1_000_000

    @classmethod
    def from_config(cls, options: dict | None) -> Limits:
        """From the config mapping ``data.extract`` (schema defaults filled in)."""
        options = options or {}
        default = cls()
        return cls(
            max_ratio=float(options.get("max_ratio", default.max_ratio)),
            max_unpacked_bytes=int(
                options.get("max_unpacked_mb", default.max_unpacked_bytes // 2**20) * 2**20
            ),
            max_members=int(options.get("max_members", default.max_members)),
        )


_LIMITS: contextvars.ContextVar[Limits] = contextvars.ContextVar("extract_limits")


@contextlib.contextmanager
def limits(value: Limits):
    """Use ``value`` for every archive read inside the ``with`` block."""
    token = _LIMITS.set(value)
    try:
        yield value
    finally:
        _LIMITS.reset(token)


def current_limits() -> Limits:
    return _LIMITS.get(Limits())


_RAISE_HINT = (
    "If you trust this file, raise data.extract.max_ratio (now {ratio:g}), "
    "data.extract.max_unpacked_mb (now {mb:,}) or data.extract.max_members (now {members:,}) "
    "in the config (docs/security.md)."
)


class Budget:
    """Counts what one archive unpacks to and stops it at the caps (see module doc)."""

    def __init__(self, archive, expected: int | None = None, lim: Limits | None = None):
        self.archive = archive
        self.limits = lim or current_limits()
        size = os.path.getsize(archive)
        if expected is not None:
            self.cap = expected
            self.why = "the unpacked size the registry expects"
        else:
            by_ratio = max(int(self.limits.max_ratio * size), FLOOR_BYTES)
            self.cap = min(by_ratio, self.limits.max_unpacked_bytes)
            self.why = (
                f"{self.limits.max_ratio:g} x the archive's {size:,} bytes"
                if by_ratio <= self.limits.max_unpacked_bytes
                else "data.extract.max_unpacked_mb"
            )
        self.total = 0
        self.members = 0

    def _fail(self, text: str):
        lim = self.limits
        hint = _RAISE_HINT.format(
            ratio=lim.max_ratio, mb=lim.max_unpacked_bytes // 2**20, members=lim.max_members
        )
        raise ArchiveTooLargeError(f"{self.archive}: {text}. {hint}")

    def member(self, name: str, size: int) -> None:
        """Account for a member declaring ``size`` bytes, before it is read."""
        self.members += 1
        if self.members > self.limits.max_members:
            self._fail(f"more than {self.limits.max_members:,} members")
        self.add(name, size)

    def add(self, name: str, size: int) -> None:
        self.total += size
        if self.total > self.cap:
            self._fail(
                f"member {name!r} brings the unpacked size to more than {self.cap:,} bytes "
                f"({self.why}); refusing an archive bomb"
            )


def read_bounded(stream, limit: int, where: str) -> bytes:
    """All of ``stream``, or ArchiveTooLargeError when it holds more than ``limit`` bytes."""
    out = io.BytesIO()
    while block := stream.read(min(CHUNK, limit + 1 - out.tell())):
        out.write(block)
        if out.tell() > limit:
            raise ArchiveTooLargeError(
                f"{where}: unpacks to more than {limit:,} bytes, the most expected; "
                "refusing a compression bomb. "
                + _RAISE_HINT.format(
                    ratio=current_limits().max_ratio,
                    mb=current_limits().max_unpacked_bytes // 2**20,
                    members=current_limits().max_members,
                )
            )
    return out.getvalue()


def gunzip_bounded(data: bytes, where: str, expected: int | None = None) -> bytes:
    """Decompress gzip ``data`` (CRC checked) up to ``expected`` or the ratio cap."""
    lim = current_limits()
    limit = expected or min(
        max(int(lim.max_ratio * len(data)), FLOOR_BYTES), lim.max_unpacked_bytes
    )
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        return read_bounded(stream, limit, where)


def safe_relpath(name: str, archive: str | os.PathLike) -> PurePosixPath:
    """The member path, relative and without ``..``; UnsafeArchiveError otherwise."""
    clean = name.replace("\\", "/")
    path = PurePosixPath(clean)
    if (
        not clean
        or clean.startswith("/")
        or (len(clean) > 1 and clean[1] == ":")
        or any(part == ".." for part in path.parts)
    ):
        raise UnsafeArchiveError(
            f"{archive}: refusing member {name!r}: it would be written outside the target folder"
        )
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")])


def _target(dest: Path, rel: PurePosixPath) -> Path:
    return dest.joinpath(*rel.parts)


# ---------------------------------------------------------------------- zip


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _zip_infos(zf: zipfile.ZipFile, archive, budget: Budget, select=None):
    """The members to read, after every member's path, type and size is checked."""
    infos = zf.infolist()
    for info in infos:
        safe_relpath(info.filename, archive)
        if _zip_is_link(info):
            raise UnsafeArchiveError(f"{archive}: refusing link member {info.filename!r}")
    chosen = [i for i in infos if not i.is_dir() and (select is None or select(i.filename))]
    for info in chosen:
        budget.member(info.filename, info.file_size)
    return chosen


@contextlib.contextmanager
def open_zip(archive: str | os.PathLike, select: Callable[[str], bool] | None = None):
    """``(ZipFile, checked members)``; corrupt or truncated zips become TruncatedArchiveError."""
    try:
        with zipfile.ZipFile(archive) as zf:
            yield zf, _zip_infos(zf, archive, Budget(archive), select)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise TruncatedArchiveError(
            f"{archive}: the zip archive is truncated or corrupt ({exc}); fetch it again"
        ) from exc


def read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One member's bytes: no more than it declares (zipfile enforces it, CRC checked)."""
    with zf.open(info) as stream:
        return stream.read()


def iter_zip(
    archive: str | os.PathLike, select: Callable[[str], bool] | None = None
) -> Iterator[tuple[PurePosixPath, bytes]]:
    """Yield (safe relative path, bytes) of the regular files of a zip archive."""
    with open_zip(archive, select) as (zf, infos):
        for info in infos:
            yield safe_relpath(info.filename, archive), read_zip_member(zf, info)


def extract_zip(archive: str | os.PathLike, dest: str | os.PathLike, select=None) -> list[Path]:
    """Extract (selected) regular files of a zip archive under ``dest``, streamed."""
    dest = Path(dest)
    with _staging(archive, dest) as stage, open_zip(archive, select) as (zf, infos):
        for info in infos:
            rel = safe_relpath(info.filename, archive)
            with zf.open(info) as src, _create(stage.folder, rel, archive) as out:
                shutil.copyfileobj(src, out, CHUNK)
        return stage.commit()


# ------------------------------------------------------------------- staging


class _Stage:
    """A fresh folder inside ``dest`` that members are written to before they move into place."""

    def __init__(self, archive, dest: Path, folder: Path):
        self.archive, self.dest, self.folder = archive, dest, folder

    def commit(self) -> list[Path]:
        written = []
        for root, _, files in os.walk(self.folder):
            for file in sorted(files):
                src = Path(root, file)
                rel = src.relative_to(self.folder)
                target = self.dest / rel
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, target)
                except OSError as exc:
                    raise ArchiveError(
                        f"{self.archive}: cannot place member {rel.as_posix()!r} at {target} "
                        f"({exc.strerror or exc}): a file and a folder of that name clash. "
                        "Remove the old extraction folder and run again."
                    ) from exc
                written.append(target)
        return written


@contextlib.contextmanager
def _staging(archive, dest: Path):
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".extract-") as tmp:
        yield _Stage(archive, dest, Path(tmp))


def _create(folder: Path, rel: PurePosixPath, archive):
    """Open ``folder/rel`` for writing; a member clashing with another is an ArchiveError."""
    target = _target(folder, rel)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return open(target, "xb")
    except OSError as exc:
        raise ArchiveError(
            f"{archive}: member {rel.as_posix()!r} clashes with another member of that name "
            f"or with a folder ({exc.strerror or exc}); the archive is malformed, fetch it again"
        ) from exc


# ---------------------------------------------------------------------- tar


_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, OSError)


@contextlib.contextmanager
def _tar_errors(archive):
    """Reading errors of a tar archive as TruncatedArchiveError naming it (our own
    ArchiveErrors, e.g. a cap or an unsafe member, pass as they are)."""
    try:
        yield
    except ArchiveError:
        raise
    except _TAR_ERRORS as exc:
        raise TruncatedArchiveError(
            f"{archive}: the tar archive is truncated or corrupt ({exc}); fetch it again"
        ) from exc


def _decompressed(raw):
    """A stream of the archive's tar bytes: gzip, bzip2 and xz read to their end markers."""
    head = raw.read(6)
    raw.seek(0)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw)
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def walk_tar(archive: str | os.PathLike, on_file=None) -> list[tarfile.TarInfo]:
    """Read a (compressed) tar in one streamed pass, checking every member; the regular files.

    Each member's path and type is checked and its declared size counted against
    the limits before ``on_file(member, stream)`` sees it. The compressed stream
    is then read to its end, so a missing gzip trailer or a bad CRC is an error.
    """
    budget = Budget(archive)
    files = []
    with _tar_errors(archive), open(archive, "rb") as raw, _decompressed(raw) as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for member in tf:
                safe_relpath(member.name, archive)
                if member.issym() or member.islnk():
                    raise UnsafeArchiveError(
                        f"{archive}: refusing link member {member.name!r} -> {member.linkname!r}"
                    )
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive}: refusing special member {member.name!r}")
                budget.member(member.name, member.size if member.isfile() else 0)
                if member.isfile():
                    files.append(member)
                    if on_file is not None:
                        on_file(member, tf.extractfile(member))
                tf.members = []  # streamed: keep no list of every member
        # The end-of-archive blocks come before the gzip trailer; read on to it.
        while block := stream.read(CHUNK):
            budget.add("(padding after the tar)", len(block))
    return files


def extract_tar(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract the regular files of a (compressed) tar archive under ``dest``, streamed."""
    dest = Path(dest)
    with _staging(archive, dest) as stage:

        def write(member, src):
            with _create(stage.folder, safe_relpath(member.name, archive), archive) as out:
                shutil.copyfileobj(src, out, CHUNK)

        walk_tar(archive, write)
        return stage.commit()


@contextlib.contextmanager
def open_tar(archive: str | os.PathLike):
    """A checked (see :func:`walk_tar`) tar archive, opened for random access to its members."""
    walk_tar(archive)
    with _tar_errors(archive), tarfile.open(archive, "r:*") as tf:
        yield tf


# ---------------------------------------------------------------------- rar

# (program, list command, extract command); {a} archive, {d} target folder.
RAR_TOOLS = (
    ("bsdtar", ["bsdtar", "-tf", "{a}"], ["bsdtar", "-xf", "{a}", "-C", "{d}"]),
    ("unar", ["lsar", "{a}"], ["unar", "-q", "-f", "-D", "-o", "{d}", "{a}"]),
    ("7z", ["7z", "l", "-ba", "-slt", "{a}"], ["7z", "x", "-y", "-o{d}", "{a}"]),
    ("unrar", ["unrar", "lb", "{a}"], ["unrar", "x", "-o+", "-y", "{a}", "{d}/"]),
)

RAR_HELP = (
    "Extracting RAR archives needs one of: bsdtar (Debian/Ubuntu: `apt-get install "
    "libarchive-tools`; macOS ships it), unar (`apt-get install unar`), 7z "
    "(`apt-get install 7zip`) or unrar (non-free). Install one, or use the MADBase CSV "
    "mirror instead (config: data.madbase.variant: csv)."
)


def rar_tool(which=shutil.which):
    """The first available RAR tool as (name, list argv, extract argv), or MissingToolError."""
    for name, listing, extract in RAR_TOOLS:
        if which(listing[0]) and which(extract[0]):
            return name, listing, extract
    raise MissingToolError(RAR_HELP)


def _run(argv, archive):
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()
        lowered = message.lower()
        if any(w in lowered for w in ("truncat", "unexpected end", "premature", "eof", "damaged")):
            raise TruncatedArchiveError(
                f"{archive}: the RAR archive is truncated or corrupt ({message}); fetch it again"
            )
        raise ArchiveError(f"{archive}: {argv[0]} failed ({proc.returncode}): {message}")
    return proc.stdout


def _rar_names(tool: str, listing: str) -> list[str]:
    if tool == "7z":
        return [line[7:] for line in listing.splitlines() if line.startswith("Path = ")]
    if tool == "unar":  # lsar prints the archive name first
        return [line for line in listing.splitlines()[1:] if line.strip()]
    return [line for line in listing.splitlines() if line.strip()]


def extract_rar(
    archive: str | os.PathLike, dest: str | os.PathLike, which=shutil.which
) -> list[Path]:
    """Extract a RAR archive under ``dest`` with an external tool, safely."""
    archive, dest = Path(archive), Path(dest)
    name, listing, extract = rar_tool(which)
    fill = {"a": str(archive.resolve()), "d": ""}
    names = _rar_names(name, _run([a.format(**fill) for a in listing], archive))
    for member in names:
        safe_relpath(member, archive)
    # Extract into a fresh folder first and check everything there (links,
    # sizes) before anything moves: a tool that honours links or odd names
    # cannot write outside ``dest``, and a refused archive leaves nothing behind.
    budget = Budget(archive)
    with _staging(archive, dest) as stage:
        fill["d"] = str(stage.folder)
        _run([a.format(**fill) for a in extract], archive)
        for root, dirs, files in os.walk(stage.folder):
            for entry in dirs + files:
                path = os.path.join(root, entry)
                if os.path.islink(path):
                    raise UnsafeArchiveError(f"{archive}: refusing link member {entry!r}")
                if entry in files:
                    budget.member(entry, os.path.getsize(path))
        return stage.commit()


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract by file name: .zip, .tar/.tar.gz/.tgz, .rar."""
    name = str(archive).lower()
    if name.endswith(".zip"):
        return extract_zip(archive, dest)
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return extract_tar(archive, dest)
    if name.endswith(".rar"):
        return extract_rar(archive, dest)
    raise ArchiveError(f"{archive}: unknown archive type (expected .zip, .tar.gz or .rar)")
