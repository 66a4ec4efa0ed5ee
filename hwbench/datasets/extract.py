"""Safe archive extraction: zip, tar(.gz) and RAR.

Members that would land outside the target folder (absolute paths, ``..``,
drive letters) and links are refused before anything is written. A truncated
or corrupt archive is reported as such, naming the file. RAR needs an external
tool: bsdtar (libarchive), unar, 7z or unrar, whichever is on PATH.
"""

from __future__ import annotations

import gzip
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
from pathlib import Path, PurePosixPath


class ArchiveError(RuntimeError):
    """An archive cannot be read."""


class TruncatedArchiveError(ArchiveError):
    """The archive ends early (an interrupted download or copy)."""


class UnsafeArchiveError(ArchiveError):
    """A member would be written outside the target folder, or is a link."""


class MissingToolError(ArchiveError):
    """No program able to read this archive format is installed."""


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


def iter_zip(
    archive: str | os.PathLike, select: Callable[[str], bool] | None = None
) -> Iterator[tuple[PurePosixPath, bytes]]:
    """Yield (safe relative path, bytes) of the regular files of a zip archive."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                safe_relpath(info.filename, archive)
                if _zip_is_link(info):
                    raise UnsafeArchiveError(f"{archive}: refusing link member {info.filename!r}")
            for info in infos:
                if info.is_dir() or (select and not select(info.filename)):
                    continue
                yield safe_relpath(info.filename, archive), zf.read(info)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise TruncatedArchiveError(
            f"{archive}: the zip archive is truncated or corrupt ({exc}); fetch it again"
        ) from exc


def extract_zip(archive: str | os.PathLike, dest: str | os.PathLike, select=None) -> list[Path]:
    """Extract (selected) regular files of a zip archive under ``dest``."""
    dest = Path(dest)
    written = []
    for rel, data in iter_zip(archive, select):
        target = _target(dest, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


# ---------------------------------------------------------------------- tar


def extract_tar(archive: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract the regular files of a (compressed) tar archive under ``dest``."""
    dest = Path(dest)
    written = []
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()  # reads the whole archive: truncation shows here
            for member in members:
                safe_relpath(member.name, archive)
                if member.issym() or member.islnk():
                    raise UnsafeArchiveError(
                        f"{archive}: refusing link member {member.name!r} -> {member.linkname!r}"
                    )
                if not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive}: refusing special member {member.name!r}")
            for member in members:
                if not member.isfile():
                    continue
                target = _target(dest, safe_relpath(member.name, archive))
                target.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(target)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:
        raise TruncatedArchiveError(
            f"{archive}: the tar archive is truncated or corrupt ({exc}); fetch it again"
        ) from exc
    return written


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
    dest.mkdir(parents=True, exist_ok=True)
    # Extract into a fresh folder first, check it, then move: a tool that
    # honours links or odd names cannot write outside ``dest``.
    with tempfile.TemporaryDirectory(dir=dest, prefix=".extract-") as tmp:
        fill["d"] = tmp
        _run([a.format(**fill) for a in extract], archive)
        written = []
        for root, dirs, files in os.walk(tmp):
            for entry in dirs + files:
                if os.path.islink(os.path.join(root, entry)):
                    raise UnsafeArchiveError(f"{archive}: refusing link member {entry!r}")
            for file in files:
                src = Path(root, file)
                rel = src.relative_to(tmp)
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, target)
                written.append(target)
    return written


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
