"""Rules preprocess and splits through the real Snakefile, on a hand-made raw dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwbench.splits import SCHEMES
from hwbench.store import load_processed, read_split, recorded_digest, store_digest
from tests.conftest import REPO, planned_jobs, run_snakemake, write_config
from tests.test_preprocess import write_images

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (REPO / "workflow/rules/data.smk").exists(),
        reason="the Snakefile includes data.smk (synth branch), absent in this checkout",
    ),
]

# only this part of the DAG (after the targets: the option takes several values);
# the raw dataset is made by the test, not by rule synth
ONLY = ("--allowed-rules", "preprocess", "splits")
TARGETS = [f"data/splits/synth/{scheme}.csv" for scheme in SCHEMES]


def write_raw(workdir, n_writers=8, per_writer=30):
    """data/raw/synth/: a manifest over PNGs, writers of unequal size."""
    raw = workdir / "data/raw/synth"
    n = n_writers * per_writer
    paths = write_images(raw / "images", n)
    writers = np.repeat(np.arange(n_writers), per_writer)
    writers[: per_writer // 2] = n_writers  # one small extra writer
    frame = pd.DataFrame(
        {
            "file": [f"images/{p.rsplit('/', 1)[1]}" for p in paths],
            "label": np.arange(n) % 5,
            "label_name": [str(i % 5) for i in range(n)],
            "script": "latin",
            "writer": [f"w{w}" for w in writers],
            "pen": "",
            "source_split": "",
        }
    )
    frame.to_csv(raw / "manifest.csv", index=False)
    return frame


def test_preprocess_and_splits_rules(workdir):
    write_config(workdir, {"datasets": ["synth"]})
    frame = write_raw(workdir)
    run_snakemake(workdir, *TARGETS, *ONLY)

    done = load_processed(workdir / "data/processed/synth")
    assert done.images.shape == (len(frame), 28, 28)
    assert list(done.meta["writer"]) == list(frame["writer"])
    # the rule's declared digest output describes the store it wrote
    processed = workdir / "data/processed/synth"
    assert recorded_digest(processed)["digest"] == store_digest(processed / "images.npy")
    assert (workdir / "logs/preprocess/synth.log").exists()
    for scheme in SCHEMES:
        split = read_split(workdir / f"data/splits/synth/{scheme}.csv")
        assert split["index"].between(0, len(frame) - 1).all()
    adaptation = read_split(workdir / "data/splits/synth/adaptation.csv")
    assert sorted(adaptation["resample"].unique()) == [0, 1, 2]

    # content decides: a scheme's own parameter reruns only that scheme's job
    assert planned_jobs(workdir, *TARGETS, *ONLY) == {}
    write_config(workdir, {"datasets": ["synth"], "splits": {"adaptation_resamples": 2}})
    assert planned_jobs(workdir, *TARGETS, *ONLY) == {"splits": 1}
    write_config(workdir, {"datasets": ["synth"], "preprocess": {"workers": 1}})
    assert planned_jobs(workdir, *TARGETS, *ONLY) == {}  # changes no image
    write_config(workdir, {"datasets": ["synth"], "preprocess": {"sigma": 0.5}})
    assert planned_jobs(workdir, *TARGETS, *ONLY) == {"preprocess": 1, "splits": 3}


def test_unreadable_image_fails_the_job_naming_it(workdir):
    write_config(workdir, {"datasets": ["synth"]})
    frame = write_raw(workdir, n_writers=3, per_writer=10)
    bad = workdir / "data/raw/synth" / frame["file"][7]
    bad.write_bytes(b"\x89PNG truncated")
    proc = run_snakemake(workdir, "data/processed/synth/images.npy", *ONLY, check=False)
    assert proc.returncode != 0
    log = (workdir / "logs/preprocess/synth.log").read_text()
    assert f"{bad.name}: cannot be decoded" in log and "on_error: skip" in log
    assert not (workdir / "data/processed/synth/images.npy").exists()


def test_datasets_not_listed_as_image_datasets_have_no_preprocess_rule(workdir):
    write_config(workdir, {"datasets": ["synth"]})
    proc = run_snakemake(
        workdir, "-n", "data/processed/not_an_image_dataset/images.npy", check=False
    )
    assert proc.returncode != 0
    assert "MissingRuleException" in proc.stdout + proc.stderr
