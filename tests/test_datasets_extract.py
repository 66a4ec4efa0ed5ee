"""Archive extraction: zip-slip, links, truncation, RAR tool detection."""

from __future__ import annotations

import shutil

import pytest

from hwbench.datasets.extract import (
    MissingToolError,
    TruncatedArchiveError,
    UnsafeArchiveError,
    extract,
    extract_rar,
    rar_tool,
)
from tests._datasets_support import rar_bytes, tar_with_member, write, zip_bytes, zip_with_symlink

HAS_RAR_TOOL = any(shutil.which(t) for t in ("bsdtar", "unar", "7z", "unrar"))


@pytest.mark.parametrize(
    "member", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt", "C:/evil.txt"]
)
def test_zip_slip_member_refused(tmp_path, member):
    archive = write(tmp_path / "a.zip", zip_bytes({"ok.txt": b"fine", member: b"evil"}))
    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # checked before anything is written


def test_zip_symlink_refused(tmp_path):
    archive = write(tmp_path / "a.zip", zip_with_symlink("link", "/etc/passwd"))
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(archive, tmp_path / "out")


def test_tar_slip_and_links_refused(tmp_path):
    bad = write(tmp_path / "a.tar.gz", tar_with_member("../../evil.txt"))
    with pytest.raises(UnsafeArchiveError):
        extract(bad, tmp_path / "out")
    link = write(tmp_path / "b.tar.gz", tar_with_member("data/link", link="/etc/passwd"))
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(link, tmp_path / "out")


def test_truncated_zip_and_tar_reported_as_truncated(tmp_path):
    data = zip_bytes({f"f{i}.bin": bytes(range(256)) * 40 for i in range(5)})
    archive = write(tmp_path / "a.zip", data[: len(data) // 2])
    with pytest.raises(TruncatedArchiveError, match=r"a\.zip.*truncated"):
        extract(archive, tmp_path / "out")
    tar = tar_with_member("big.bin", bytes(range(256)) * 4000)
    archive = write(tmp_path / "a.tar.gz", tar[: len(tar) // 2])
    with pytest.raises(TruncatedArchiveError, match=r"a\.tar\.gz.*truncated"):
        extract(archive, tmp_path / "out")


def test_good_archives_extract(tmp_path):
    archive = write(tmp_path / "a.zip", zip_bytes({"d/x.txt": b"x", "y.txt": b"y"}))
    written = extract(archive, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "d/x.txt",
        "y.txt",
    ]
    assert (tmp_path / "out" / "d" / "x.txt").read_bytes() == b"x"


def test_missing_rar_tool_names_the_commands_to_install(tmp_path):
    archive = write(tmp_path / "a.rar", rar_bytes({"x.txt": b"x"}))
    with pytest.raises(MissingToolError) as err:
        extract_rar(archive, tmp_path / "out", which=lambda name: None)
    text = str(err.value)
    assert "apt-get install libarchive-tools" in text and "unar" in text
    assert "data.madbase.variant: csv" in text


def test_rar_tool_preference_order():
    available = {"unar": "/x/unar", "lsar": "/x/lsar", "7z": "/x/7z"}
    assert rar_tool(available.get)[0] == "unar"
    assert rar_tool({"7z": "/x/7z"}.get)[0] == "7z"


@pytest.mark.skipif(
    not HAS_RAR_TOOL, reason="no RAR extractor installed (apt-get install libarchive-tools)"
)
def test_rar_extracts_and_truncation_is_reported(tmp_path):
    data = rar_bytes({"dir/a.txt": b"alpha" * 100, "b.txt": b"beta"})
    archive = write(tmp_path / "a.rar", data)
    extract_rar(archive, tmp_path / "out")
    assert (tmp_path / "out" / "dir" / "a.txt").read_bytes() == b"alpha" * 100
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"beta"
    assert not list((tmp_path / "out").glob(".extract-*"))
    cut = write(tmp_path / "cut.rar", data[: len(data) - 200])
    with pytest.raises(TruncatedArchiveError, match=r"cut\.rar.*truncated"):
        extract_rar(cut, tmp_path / "out2")


@pytest.mark.skipif(
    not HAS_RAR_TOOL, reason="no RAR extractor installed (apt-get install libarchive-tools)"
)
def test_rar_slip_member_refused(tmp_path):
    archive = write(tmp_path / "a.rar", rar_bytes({"../evil.txt": b"evil"}))
    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        extract_rar(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
