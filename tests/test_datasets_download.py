"""Downloads: resume, retries, mirrors, verification, local copies, offline message."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from hwbench.datasets import registry
from hwbench.datasets.download import USER_AGENT, ChecksumError, DownloadError, fetch
from hwbench.datasets.prepare import fetch_file, record_path
from tests._datasets_support import mnist_like, served_spec, write

NAMES = tuple(f.name for f in registry.MNIST.files)
FAST = {"timeout": 5, "retries": 2, "backoff": 0.01}


@pytest.fixture
def mnist(server):
    contents, arrays = mnist_like(NAMES)
    return served_spec(registry.MNIST, server, contents), contents


def test_download_verifies_and_moves_into_place(tmp_path, server, mnist):
    spec, contents = mnist
    got = fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == contents[NAMES[0]]
    assert not (tmp_path / (NAMES[0] + ".part")).exists()
    assert got.checked == "sha256" and got.source == spec.files[0].urls[-1]
    assert server.requests[-1]["agent"] == USER_AGENT


def test_resume_after_connection_dropped_mid_file(tmp_path, server, mnist):
    spec, contents = mnist
    path = f"/mnist/{NAMES[0]}"
    server.faults[path] = ["drop:100"]
    fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == contents[NAMES[0]]
    ranges = [r["range"] for r in server.requests if r["path"] == path]
    assert ranges == [None, "bytes=100-"]


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, mnist):
    spec, contents = mnist
    path = f"/mnist/{NAMES[0]}"
    server.faults[path] = ["drop:50", "norange"]
    fetch(spec, NAMES[0], tmp_path, **FAST)
    assert (tmp_path / NAMES[0]).read_bytes() == contents[NAMES[0]]


def test_404_on_first_mirror_falls_through_to_second(tmp_path, server, mnist):
    _, contents = mnist
    spec = served_spec(registry.MNIST, server, contents, urls={NAMES[1]: ["/gone/" + NAMES[1]]})
    got = fetch(spec, NAMES[1], tmp_path, **FAST)
    assert got.source.endswith(f"/mnist/{NAMES[1]}")
    assert [r["path"] for r in server.requests] == ["/gone/" + NAMES[1], f"/mnist/{NAMES[1]}"]


def test_checksum_mismatch_removes_only_the_partial_and_names_the_mirror(tmp_path, server, mnist):
    spec, _ = mnist
    keep = write(tmp_path / "unrelated.bin", b"keep me")
    server.faults[f"/mnist/{NAMES[0]}"] = ["corrupt"]
    with pytest.raises(DownloadError) as err:
        fetch(spec, NAMES[0], tmp_path, **FAST)
    text = str(err.value)
    assert spec.files[0].urls[-1] in text and "do not verify" in text and "sha256" in text
    assert not (tmp_path / (NAMES[0] + ".part")).exists()
    assert not (tmp_path / NAMES[0]).exists()
    assert keep.read_bytes() == b"keep me"


def test_bad_first_mirror_then_good_second(tmp_path, server, mnist):
    _, contents = mnist
    spec = served_spec(registry.MNIST, server, contents, urls={NAMES[0]: ["/bad/" + NAMES[0]]})
    server.files["/bad/" + NAMES[0]] = b"<html>error</html>".ljust(len(contents[NAMES[0]]), b" ")
    got = fetch(spec, NAMES[0], tmp_path, **FAST)
    assert got.source.endswith(f"/mnist/{NAMES[0]}")


def test_offline_message_lists_urls_and_the_place_for_a_copy(tmp_path):
    spec = registry.MNIST  # real URLs; nothing outside 127.0.0.1 is reachable here
    dead = spec.with_files(
        [
            f.__class__(
                **{
                    **f.__dict__,
                    "urls": ("http://127.0.0.1:9/a/" + f.name, "http://127.0.0.1:9/b/" + f.name),
                }
            )
            for f in spec.files
        ]
    )
    raw = tmp_path / "data" / "raw" / "mnist"
    with pytest.raises(DownloadError) as err:
        fetch(dead, NAMES[0], raw, timeout=2, retries=5, backoff=0.01)
    text = str(err.value)
    assert "http://127.0.0.1:9/a/" + NAMES[0] in text and "http://127.0.0.1:9/b/" + NAMES[0] in text
    assert str(raw / NAMES[0]) in text
    assert "data.mnist.local_copy" in text
    assert text.count("unreachable after 2 attempts") == 2  # no long retries when offline


def test_local_uncompressed_copy_accepted_by_payload_checksum(tmp_path, mnist):
    spec, contents = mnist
    mine = tmp_path / "mine"
    payload = spec.files[0].payload
    write(mine / payload.name, gzip.decompress(contents[NAMES[0]]))
    raw = tmp_path / "raw"
    got = fetch(spec, NAMES[0], raw, local_copy=str(mine), **FAST)
    assert got.path == payload.name and got.checked == "md5"
    assert (raw / payload.name).read_bytes() == gzip.decompress(contents[NAMES[0]])


def test_local_copy_with_wrong_bytes_is_refused_and_kept(tmp_path, mnist):
    spec, contents = mnist
    data = bytearray(contents[NAMES[0]])
    data[len(data) // 2] ^= 0xFF
    mine = write(tmp_path / "mine" / NAMES[0], bytes(data))
    with pytest.raises(ChecksumError, match="does not match mnist/train-images"):
        fetch(spec, NAMES[0], tmp_path / "raw", local_copy=str(mine.parent), **FAST)
    assert mine.exists()


def test_file_already_in_raw_is_verified_without_network(tmp_path, server, mnist):
    spec, contents = mnist
    write(tmp_path / NAMES[2], contents[NAMES[2]])
    got = fetch(spec, NAMES[2], tmp_path, **FAST)
    assert got.source == str(tmp_path / NAMES[2]) and server.requests == []


def test_unverified_entry_checks_size_and_format_and_prints_sha256(tmp_path, server, caplog):
    contents, _ = mnist_like(NAMES)
    spec = served_spec(registry.MNIST, server, contents, hashes=False)
    with caplog.at_level(logging.WARNING, logger="hwbench.datasets"):
        got = fetch(spec, NAMES[3], tmp_path, **FAST)
    assert got.checked == "size+format"
    assert got.sha256 in caplog.text and "no published checksum" in caplog.text


def test_unverified_entry_rejects_an_html_page(tmp_path, server):
    contents, _ = mnist_like(NAMES)
    spec = served_spec(registry.MNIST, server, contents, hashes=False)
    server.files[f"/mnist/{NAMES[3]}"] = b"<html>" + b" " * (len(contents[NAMES[3]]) - 6)
    with pytest.raises(DownloadError, match="not a .gz file"):
        fetch(spec, NAMES[3], tmp_path, **FAST)


def test_fetch_file_writes_a_record(tmp_path, mnist):
    spec, _ = mnist
    got = fetch_file("mnist", NAMES[1], tmp_path, spec=spec, download_options={"retries": 1})
    record = json.loads(record_path("mnist", NAMES[1], tmp_path).read_text())
    assert record["sha256"] == got.sha256 and record["path"] == NAMES[1]


def test_registry_entries_are_complete():
    for spec in registry.REGISTRY.values():
        assert spec.route in ("arrays", "images") and spec.licence and spec.citation
        if not spec.manual:
            assert spec.files_for(), spec.name
        for f in spec.files:
            assert all(u.startswith("http") for u in f.urls)
            # only a non-default form may be local-copy only (Kaggle's login-gated CSV)
            default = spec.files_for()
            assert f.urls or (f.variant and f not in default and f.variant in spec.notes)
            for value in (f.md5, f.sha256):
                assert value is None or (len(value) in (32, 64) and int(value, 16) >= 0)
    assert registry.MNIST.file(NAMES[0]).payload.md5 == "6bbc9ace898e44ae57da46a324031adb"
    assert [f.name for f in registry.MADBASE.files_for("csv")] == ["madbase_csv.zip"]
    with pytest.raises(KeyError, match="no variant"):
        registry.MADBASE.files_for("zip")


def test_rule_helpers_cover_every_dataset():
    from hwbench.datasets import rules
    from tests.conftest import REPO

    assert set(rules.READER_CODE) == set(registry.REGISTRY)
    for name in registry.REGISTRY:
        assert all((REPO / "hwbench" / m).is_file() for m in rules.reader_code(name))
    config = {
        "data": {"madbase": {"local_copy": "/x", "variant": "csv"}, "amharic": {"local_copy": "/y"}}
    }
    assert rules.record_targets(config, "madbase") == [
        "data/raw/madbase/verified/madbase_csv.zip.json"
    ]
    assert rules.reader_options(config, "madbase") == {"variant": "csv"}
    assert rules.reader_options(config, "amharic") == {"local_copy": "/y"}
    assert rules.record_targets({}, "amharic") == []
