"""The real-dataset rules: `snakemake -n` builds a DAG from the downloads to
data/processed/<ds> for every registered dataset, with config/paper.yaml."""

from __future__ import annotations

import pytest
import yaml

from hwbench.datasets import registry
from tests.conftest import REPO, planned_jobs, write_config

RULE_FILES = [REPO / "workflow/rules" / f for f in ("data.smk", "preprocess.smk", "splits.smk")]
pytestmark = pytest.mark.skipif(
    not all(p.exists() for p in RULE_FILES),
    reason="needs the data/preprocess/splits rule files from the other branches",
)


@pytest.fixture
def paper_workdir(workdir):
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text(encoding="utf-8"))
    write_config(workdir, paper)
    return workdir


def test_paper_config_lists_every_registered_dataset():
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text(encoding="utf-8"))
    assert sorted(paper["datasets"]) == sorted(registry.REGISTRY)
    assert sorted(k for k in paper["data"] if k != "download") == sorted(registry.REGISTRY)


@pytest.mark.parametrize("dataset", sorted(registry.REGISTRY))
def test_dag_from_downloads_to_processed(paper_workdir, dataset):
    spec = registry.get(dataset)
    jobs = planned_jobs(paper_workdir, f"data/processed/{dataset}/images.npy")
    assert jobs.get("fetch_raw", 0) == len(spec.files_for())
    if spec.route == "arrays":
        assert jobs["real_arrays"] == 1
    else:
        assert jobs["real_manifest"] == 1 and "real_arrays" not in jobs


def test_native_size_variants_name_their_raw_dataset():
    from hwbench.datasets import rules as dsrules

    config = {
        "datasets": ["nist128"],
        "synth": {"synth": {"seed": 0}},
        "preprocess": {
            "sigma": 1.0,
            "border": 2,
            "rescale": True,
            "native_size": {"nist128": "nist"},
        },
        "transfer": {"tasks": {"t": {"dataset": "nist128"}}},
    }
    images = ["nist", "deepwriting"]
    dsrules.check_native_datasets(config, images)
    dsrules.check_dataset_names(config)  # a variant may be listed in `datasets`
    assert dsrules.raw_dataset(config, "nist128") == "nist"
    assert dsrules.raw_dataset(config, "nist") == "nist"
    assert dsrules.preprocess_params(config, "nist128") == {"native": True}
    assert dsrules.preprocess_params(config, "nist") == {"sigma": 1.0, "border": 2, "rescale": True}
    assert dsrules.prefetch_datasets(config) == ["nist"]  # the variant's raw data
    for bad, match in (
        ({"nist": "deepwriting"}, r"native_size.nist: 'nist' is already a dataset"),
        ({"synth": "nist"}, r"native_size.synth: 'synth' is already a dataset"),
        ({"mnist128": "mnist"}, r"native_size.mnist128 = 'mnist' is not a raw image dataset"),
    ):
        wrong = {**config, "preprocess": {**config["preprocess"], "native_size": bad}}
        with pytest.raises(ValueError, match=match):
            dsrules.check_native_datasets(wrong, images)
