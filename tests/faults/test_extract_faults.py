"""Issue 14 item 6 and the archive parts of item 10: bombs, clashes, trailers, RAR links."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile

import pytest

from hwbench.datasets import extract
from hwbench.datasets.idx import IdxFormatError
from hwbench.datasets.idx_datasets import read_emnist
from tests._datasets_support import write

BOMB = 64 * 2**20  # unpacked bytes; the archives below are about 64 KB


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w") as out:
            for _ in range(BOMB // 2**20):
                out.write(b"\0" * 2**20)
    return buf.getvalue()


def _tar_gz(members: list[tuple[str, bytes | None]]) -> bytes:
    """Members in order; ``None`` data makes a folder."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tar_gz_bomb() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = BOMB

        class Zeros(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, b):
                b[:] = bytes(len(b))
                return len(b)

        tf.addfile(info, io.BufferedReader(Zeros()))
    return buf.getvalue()


def _files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_zip_bomb_is_refused_before_writing(tmp_path):
    archive = write(tmp_path / "bomb.zip", _zip_bomb())
    assert archive.stat().st_size < 1_000_000
    with pytest.raises(extract.ArchiveTooLargeError) as err:
        extract.extract_zip(archive, tmp_path / "out")
    assert "bomb.zip" in str(err.value) and "data.extract.max_ratio" in str(err.value)
    assert _files(tmp_path / "out") == []


def test_zip_bomb_is_refused_by_the_in_memory_readers(tmp_path):
    archive = write(tmp_path / "bomb.zip", _zip_bomb())
    with pytest.raises(extract.ArchiveTooLargeError):
        list(extract.iter_zip(archive))


def test_gzip_bomb_inside_the_emnist_zip(tmp_path):
    bomb = gzip.compress(b"\0" * BOMB, compresslevel=9)
    members = {
        f"gzip/emnist-byclass-{part}": bomb
        for part in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "test-images-idx3-ubyte.gz",
            "test-labels-idx1-ubyte.gz",
        )
    }
    members["gzip/emnist-byclass-mapping.txt"] = b"0 48\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    archive = write(tmp_path / "gzip.zip", buf.getvalue())
    with pytest.raises(IdxFormatError, match=r"refusing a compression bomb.*max_ratio"):
        read_emnist({"gzip.zip": archive})


def test_tar_gz_bomb_writes_nothing(tmp_path):
    archive = write(tmp_path / "bomb.tar.gz", _tar_gz_bomb())
    with pytest.raises(extract.ArchiveTooLargeError, match=r"bomb\.tar\.gz.*max_unpacked_mb"):
        extract.extract_tar(archive, tmp_path / "out")
    assert _files(tmp_path / "out") == []


def test_limits_can_be_raised(tmp_path):
    archive = write(tmp_path / "bomb.tar.gz", _tar_gz_bomb())
    with extract.limits(extract.Limits(max_ratio=10_000)):
        written = extract.extract_tar(archive, tmp_path / "out")
    assert [p.stat().st_size for p in written] == [BOMB]


def test_member_count_is_capped(tmp_path):
    archive = write(tmp_path / "many.tar.gz", _tar_gz([(f"f{i}", b"") for i in range(50)]))
    with (
        extract.limits(extract.Limits(max_members=10)),
        pytest.raises(extract.ArchiveTooLargeError, match=r"more than 10 members"),
    ):
        extract.extract_tar(archive, tmp_path / "out")


def test_tar_gz_without_its_gzip_trailer_is_truncated(tmp_path):
    data = _tar_gz([("a.txt", b"hello" * 100)])
    archive = write(tmp_path / "cut.tar.gz", data[:-8])  # CRC32 and length gone
    with pytest.raises(extract.TruncatedArchiveError, match=r"cut\.tar\.gz.*fetch it again"):
        extract.extract_tar(archive, tmp_path / "out")


def test_tar_gz_with_a_bad_crc_is_corrupt(tmp_path):
    data = bytearray(_tar_gz([("a.txt", b"hello" * 100)]))
    data[-8] ^= 0xFF
    archive = write(tmp_path / "crc.tar.gz", bytes(data))
    with pytest.raises(extract.TruncatedArchiveError):
        extract.extract_tar(archive, tmp_path / "out")


@pytest.mark.parametrize(
    "members",
    [
        [("a", b"file"), ("a/b", b"under a file")],
        [("a/b", b"x"), ("a", b"file where a folder is")],
        [("same", b"1"), ("same", b"2")],
    ],
)
def test_file_and_folder_clash_is_an_archive_error(tmp_path, members):
    archive = write(tmp_path / "clash.tar.gz", _tar_gz(members))
    with pytest.raises(extract.ArchiveError, match=r"clash\.tar\.gz: member .* clashes"):
        extract.extract_tar(archive, tmp_path / "out")
    assert _files(tmp_path / "out") == []


def test_zip_clash_is_an_archive_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a", b"file")
        zf.writestr("a/b", b"under a file")
    archive = write(tmp_path / "clash.zip", buf.getvalue())
    with pytest.raises(extract.ArchiveError, match=r"clash\.zip: member .* clashes"):
        extract.extract_zip(archive, tmp_path / "out")


FAKE_BSDTAR = """#!/bin/sh
# stands in for bsdtar: lists two members, extracts a file and a link to /etc/passwd
if [ "$1" = "-tf" ]; then printf 'a.txt\\nsub/link\\n'; exit 0; fi
mkdir -p "$4/sub" && echo data > "$4/a.txt" && ln -s /etc/passwd "$4/sub/link"
"""


def test_rar_link_is_found_before_anything_moves(tmp_path, monkeypatch):
    tools = tmp_path / "bin"
    tool = write(tools / "bsdtar", FAKE_BSDTAR.encode())
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    archive = write(tmp_path / "x.rar", b"Rar!\x1a\x07\x00")
    dest = tmp_path / "out"
    with pytest.raises(extract.UnsafeArchiveError, match="link"):
        extract.extract_rar(archive, dest)
    assert _files(dest) == [], "a member was moved into place before the link was seen"
