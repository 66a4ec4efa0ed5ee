"""Issue 14 item 5 and the local-copy parts of item 10: hostile mirrors and clumsy copies.

Every server here is the fixture server on 127.0.0.1; each hostile answer is bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time

import pytest

from hwbench.datasets import registry
from hwbench.datasets.download import DownloadError, fetch
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
