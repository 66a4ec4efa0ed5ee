"""Issue 14 item 5 and the local-copy parts of item 10: hostile mirrors and clumsy copies.

Every server here is the fixture server on 127.0.0.1; each hostile answer is bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import time

import pytest

from hwbench.datasets import registry
from hwbench.datasets.download import ChecksumError, DownloadError, fetch
from tests._datasets_support import mnist_like, served_spec, write

NAMES = tuple(f.name for f in registry.MNIST.files)
FAST = {"timeout": 5, "retries": 2, "backoff": 0.01}


@pytest.fixture
def mnist(server):
    contents, _ = mnist_like(NAMES)
    return served_spec(registry.MNIST, server, contents), contents


def _unverified(spec, name, size=True):
    """``spec`` with ``name`` stripped of checksums (and of its size unless ``size``)."""
    files = [
        dataclasses.replace(f, md5=None, sha256=None, payload=None, size=f.size if size else None)
        if f.name == name
        else f
        for f in spec.files
    ]
    return spec.with_files(files)


class _Watch:
    """A progress factory that records the largest ``.part`` seen while streaming."""

    def __init__(self, part):
        self.part, self.largest = part, 0

    def __call__(self, **kwargs):
        watch = self

        class Bar:
            def update(self, n):
                if watch.part.exists():
                    watch.largest = max(watch.largest, watch.part.stat().st_size)

        return contextlib.nullcontext(Bar())


def test_body_past_the_registered_size_is_cut_off(tmp_path, server, mnist):
    spec, contents = mnist
    spec = _unverified(spec, NAMES[0])
    server.faults[f"/mnist/{NAMES[0]}"] = ["grow", "grow", "grow"]
    watch = _Watch(tmp_path / (NAMES[0] + ".part"))
    with pytest.raises(DownloadError, match=r"sent more than the registered"):
        fetch(spec, NAMES[0], tmp_path, progress=watch, **FAST)
    assert watch.largest <= len(contents[NAMES[0]])
    assert not watch.part.exists()


def test_unknown_size_is_capped(tmp_path, server, mnist):
    spec, contents = mnist
    spec = _unverified(spec, NAMES[0], size=False)
    server.faults[f"/mnist/{NAMES[0]}"] = ["grow"]
    with pytest.raises(DownloadError, match=r"max_unregistered_mb"):
        fetch(spec, NAMES[0], tmp_path, max_unregistered_bytes=100_000, **FAST)
    assert not (tmp_path / (NAMES[0] + ".part")).exists()


def test_206_without_matching_content_range_is_not_spliced(tmp_path, server, mnist):
    # an unverified entry (no size, no checksum) used to accept prefix + whole file
    spec, contents = mnist
    spec = _unverified(spec, NAMES[0], size=False)
    server.faults[f"/mnist/{NAMES[0]}"] = ["drop:100", "splice"]
    fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == contents[NAMES[0]]
    ranges = [r["range"] for r in server.requests]
    assert ranges == [None, "bytes=100-", None]


def test_trickling_server_hits_the_deadline(tmp_path, server, mnist):
    spec, _ = mnist
    server.faults[f"/mnist/{NAMES[0]}"] = ["trickle"] * 3
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"deadline of 1 s.*data\.download\.deadline_s"):
        fetch(spec, NAMES[0], tmp_path, deadline_s=1.0, **FAST)
    assert time.monotonic() - start < 10


def test_stale_full_size_part_is_not_blamed_on_the_mirror(tmp_path, server, mnist, caplog):
    spec, contents = mnist
    data = contents[NAMES[0]]
    write(tmp_path / (NAMES[0] + ".part"), b"\0" * len(data))
    with caplog.at_level(logging.WARNING, logger="hwbench.datasets"):
        got = fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == data
    assert got.source == spec.files[0].urls[-1]
    assert "left by an earlier run does not verify" in caplog.text


def test_stale_full_size_part_that_verifies_is_used(tmp_path, server, mnist):
    spec, contents = mnist
    write(tmp_path / (NAMES[0] + ".part"), contents[NAMES[0]])
    got = fetch(spec, NAMES[0], tmp_path, **FAST)
    assert "earlier run" in got.source and server.requests == []


# ------------------------------------------------------------ local copies (item 10)


def test_missing_local_copy_names_the_dataset(tmp_path, mnist):
    spec, _ = mnist
    with pytest.raises(FileNotFoundError, match=r"data\.mnist\.local_copy"):
        fetch(spec, NAMES[0], tmp_path / "raw", local_copy=str(tmp_path / "nowhere"), **FAST)


def test_local_copy_file_with_a_foreign_name_is_an_error(tmp_path, server, mnist):
    spec, contents = mnist
    odd = write(tmp_path / "my-mnist.gz", contents[NAMES[0]])
    with pytest.raises(FileNotFoundError, match=r"data\.mnist\.local_copy.*none of mnist's"):
        fetch(spec, NAMES[0], tmp_path / "raw", local_copy=str(odd), **FAST)
    assert server.requests == []


def _flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)


def test_local_copy_file_with_wrong_bytes_names_the_config_key(tmp_path, server, mnist):
    # issue 25 item 3: the error named the file but never the key the user must fix
    spec, contents = mnist
    mine = write(tmp_path / "copies" / NAMES[0], _flipped(contents[NAMES[0]]))
    before = mine.read_bytes()
    with pytest.raises(ChecksumError) as caught:
        fetch(spec, NAMES[0], tmp_path / "raw", local_copy=str(mine), **FAST)
    message = str(caught.value)
    assert message.startswith(f"config data.mnist.local_copy = {str(mine)!r}: {mine}: ")
    assert "does not match mnist/" in message and "set it to null" in message
    assert mine.read_bytes() == before and server.requests == []  # untouched, no download


def test_local_copy_folder_with_wrong_bytes_names_the_config_key(tmp_path, server):
    names = tuple(f.name for f in registry.KANNADA_MNIST.files_for())  # the IDX form
    contents, _ = mnist_like(names, seed=3)
    spec = served_spec(registry.KANNADA_MNIST, server, contents)
    folder = tmp_path / "kannada"
    write(folder / names[1], _flipped(contents[names[1]]))
    with pytest.raises(ChecksumError, match=r"^config data\.kannada_mnist\.local_copy = .*kannada"):
        fetch(spec, names[1], tmp_path / "raw", local_copy=str(folder), **FAST)
    assert (folder / names[1]).read_bytes() == _flipped(contents[names[1]])


def test_damaged_file_in_raw_does_not_blame_the_config_key(tmp_path, mnist):
    spec, contents = mnist
    write(tmp_path / NAMES[0], _flipped(contents[NAMES[0]]))
    with pytest.raises(ChecksumError) as caught:
        fetch(spec, NAMES[0], tmp_path, **FAST)
    assert "local_copy" not in str(caught.value).split("Replace")[0]


def test_local_copy_that_is_the_raw_file_by_another_path(tmp_path, mnist):
    spec, contents = mnist
    raw = tmp_path / "raw"
    write(raw / NAMES[0], contents[NAMES[0]])
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.link(raw / NAMES[0], other / NAMES[0])  # the same file under another path
    # a leftover temp name that is the same file too: shutil raised SameFileError
    os.link(raw / NAMES[0], raw / (NAMES[0] + ".part"))
    got = fetch(spec, NAMES[0], raw, local_copy=str(other), **FAST)
    assert got.size == len(contents[NAMES[0]])
    assert (raw / NAMES[0]).read_bytes() == contents[NAMES[0]]


# ------------------------------------------------------- lying range answers (issue 25, item 4)


@pytest.mark.parametrize("fault", ["liar", "liar-close"])
def test_206_claiming_the_offset_but_sending_byte_0_is_not_spliced(
    tmp_path, server, mnist, caplog, fault
):
    # The probe: an entry with no size or checksum, a connection dropped
    # part-way, and a resume answered 206 whose Content-Range claims the offset
    # while the body starts at byte 0. The body is longer than the range it claims.
    spec, contents = mnist
    spec = _unverified(spec, NAMES[0], size=False)
    data = contents[NAMES[0]]
    server.faults[f"/mnist/{NAMES[0]}"] = ["drop:100", fault]
    with caplog.at_level(logging.WARNING, logger="hwbench.datasets"):
        got = fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == data and got.size == len(data)
    assert [r["range"] for r in server.requests] == [None, "bytes=100-", None]
    assert "restarting from byte 0" in caplog.text
    # accepted unverified, with the sha256 to pin printed
    assert got.checked == "format" and got.sha256 in caplog.text


def test_a_mirror_that_lies_about_ranges_twice_is_named_and_dropped(tmp_path, server, mnist):
    spec, contents = mnist
    spec = _unverified(spec, NAMES[0], size=False)
    url = spec.file(NAMES[0]).urls[-1]
    server.faults[f"/mnist/{NAMES[0]}"] = ["drop:100", "liar", "drop:100", "liar"]
    with pytest.raises(DownloadError) as caught:
        fetch(spec, NAMES[0], tmp_path, **(FAST | {"retries": 6}))
    message = str(caught.value)
    assert len(server.requests) == 4  # failed on the second lie, not after all retries
    assert f"{url}: " in message and "second inconsistent range answer" in message
    assert not (tmp_path / NAMES[0]).exists()
    assert not (tmp_path / (NAMES[0] + ".part")).exists()


def test_206_starting_elsewhere_restarts_from_zero(tmp_path, server, mnist):
    spec, contents = mnist
    server.faults[f"/mnist/{NAMES[0]}"] = ["drop:100", "shifted"]
    fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == contents[NAMES[0]]
    assert [r["range"] for r in server.requests] == [None, "bytes=100-", None]


class _Answer:
    def __init__(self, **headers):
        self.headers = headers


@pytest.mark.parametrize(
    ("headers", "total", "problem"),
    [
        ({"Content-Range": "bytes 100-999/1000", "Content-Length": "900"}, 1000, None),
        ({"Content-Range": "bytes 100-999/1000", "Content-Length": "1000"}, 1000, "Content-Length"),
        ({"Content-Range": "bytes 100-999/1000"}, None, None),  # close-delimited: counted
        ({"Content-Range": "bytes 100-1199/1200", "Content-Length": "1100"}, 1000, "total of"),
        ({"Content-Range": "bytes 100-499/1000", "Content-Length": "400"}, 1000, "to the end"),
        ({"Content-Range": "bytes 0-999/1000", "Content-Length": "1000"}, 1000, "starts at 0"),
        ({"Content-Range": "bytes 100-999/abc"}, 1000, "Content-Range is"),
    ],
)
def test_range_answer_rules(headers, total, problem):
    from hwbench.datasets.download import _range_problem

    found, span = _range_problem(_Answer(**headers), 100, total)
    assert (found is None) if problem is None else (problem in found)
    if problem is None:
        assert span == 900


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_local_copy_lands_with_the_umask_mode(tmp_path, mnist, mask):
    # issue 25: the copy of a local file landed 0600 (mkstemp's mode), ignoring the umask
    spec, contents = mnist
    mine = write(tmp_path / "copies" / NAMES[0], contents[NAMES[0]])
    old = os.umask(mask)
    try:
        fetch(spec, NAMES[0], tmp_path / "raw", local_copy=str(mine), **FAST)
    finally:
        os.umask(old)
    assert (tmp_path / "raw" / NAMES[0]).stat().st_mode & 0o777 == 0o666 & ~mask


def test_full_disk_during_a_download_stops_at_once_and_keeps_the_part(
    tmp_path, server, mnist, monkeypatch
):
    # issue 25 item 2: a full disk was retried as if the mirror had failed
    from hwbench.datasets import download as dl
    from hwbench.store import StorageError

    spec, contents = mnist
    real_open = open

    class FullDisk:
        def __init__(self, stream):
            self.stream, self.writes = stream, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, block):
            if self.writes:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.writes += 1
            return self.stream.write(block[:100])

        def __getattr__(self, name):
            return getattr(self.stream, name)

    def fake_open(path, mode="r", *args, **kwargs):
        stream = real_open(path, mode, *args, **kwargs)
        return FullDisk(stream) if str(path).endswith(".part") else stream

    monkeypatch.setattr(dl, "open", fake_open, raising=False)
    monkeypatch.setattr(dl, "CHUNK", 1000)  # several blocks
    part = tmp_path / (NAMES[0] + ".part")
    with pytest.raises(StorageError) as caught:
        fetch(spec, NAMES[0], tmp_path, **FAST)
    message = str(caught.value)
    assert message.startswith(f"{part}: could not be written: the disk is full")
    assert "MiB free on the file system holding" in message and "rerun" in message
    assert len(server.requests) == 1  # no retries, no other mirror
    assert part.read_bytes() == contents[NAMES[0]][:100]  # kept for the rerun to resume
