"""Issue 14 items 7, 10 and 11: config names, orphan temporaries, GPU locks, Dig-MNIST."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from hwbench import store
from hwbench.datasets import registry
from hwbench.datasets.idx import IdxFormatError
from hwbench.datasets.idx_datasets import read_dig_mnist
from hwbench.datasets.rules import check_dataset_names
from hwbench.engine import _gpu_lock_dir, claim_gpu
from tests._datasets_support import idx_bytes, write
from tests.conftest import REPO, run_snakemake, write_config

# --------------------------------------------------------------- item 7: config


def test_unknown_dataset_name_names_the_datasets_key():
    config = {"datasets": ["synth", "mnist", "nosuch"], "synth": {"synth": {}}}
    with pytest.raises(ValueError, match=r"config datasets: \['nosuch'\]"):
        check_dataset_names(config)
    check_dataset_names({**config, "datasets": ["synth", "mnist"]})
    check_dataset_names({**config, "datasets": ["mine"], "image_datasets": ["mine"]})


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["../../outside"], "does not match"),  # the schema's item pattern
        (["synth", "nosuch"], "config datasets: ['nosuch'] cannot be built"),
    ],
)
def test_bad_dataset_names_stop_the_workflow(workdir, names, expected):
    write_config(workdir, {"datasets": names})
    proc = run_snakemake(workdir, "-n", check=False, timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert expected in text and "datasets" in text
    assert not (workdir.parent / "outside").exists()


# ------------------------------------------------ item 10: orphan temporaries

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from hwbench.store import atomic_path

    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_text("half written")
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_orphan_of_a_killed_write_is_removed_by_the_next(tmp_path):
    target = tmp_path / "out" / "table.csv"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=REPO)
    assert proc.returncode == -9
    orphans = [p for p in target.parent.iterdir() if p.name != target.name]
    assert len(orphans) == 1
    store.write_text(target, "whole\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_a_live_writers_temporary_is_kept(tmp_path):
    target = tmp_path / "table.csv"
    with store.atomic_path(target) as tmp:
        tmp.write_text("in progress")
        store.write_text(target, "other\n")  # the same process writes it again
        assert tmp.exists()


# ------------------------------------------------------- item 10: GPU locks


def test_unopenable_gpu_lock_counts_as_claimed(tmp_path):
    (tmp_path / "hwbench-gpu0.lock").mkdir()  # cannot be opened as a file, even by root
    os.symlink(tmp_path / "victim", tmp_path / "hwbench-gpu1.lock")  # a planted link
    index, handle = claim_gpu([30, 20, 10], tmp_path)
    assert index == 2 and handle is not None
    assert not (tmp_path / "victim").exists(), "the lock followed a planted link"
    handle.close()


def test_gpu_lock_dir_is_private(monkeypatch, tmp_path):
    monkeypatch.delenv("HWBENCH_GPU_LOCK_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    folder = _gpu_lock_dir()
    info = os.lstat(folder)
    assert folder.startswith(str(tmp_path)) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.getuid()


# --------------------------------------------------- item 10/11: Dig-MNIST


def test_dig_mnist_is_pinned():
    x, y = registry.DIG_MNIST.files_for()
    assert (x.size, x.md5) == (1_395_287, "d224f44185e453487ad5af34e201a87c")
    assert (y.size, y.md5) == (92, "9f9e1a4ecb080d70c5953eed2d8121f0")
    assert x.verified and y.verified


def test_truncated_dig_mnist_says_how_to_fetch_again(tmp_path):
    import numpy as np

    images = idx_bytes(np.zeros((4, 28, 28), np.uint8), compress=False)[:-10]
    labels = idx_bytes(np.zeros(4, np.uint8), compress=False)
    files = {
        "X_dig_MNIST-idx3-ubyte.gz": write(tmp_path / "X_dig_MNIST-idx3-ubyte.gz", images),
        "y_dig_MNIST-idx1-ubyte.gz": write(tmp_path / "y_dig_MNIST-idx1-ubyte.gz", labels),
    }
    with pytest.raises(IdxFormatError, match=r"X_dig_MNIST.*--forcerun fetch_raw"):
        read_dig_mnist(files)
