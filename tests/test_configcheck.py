"""Config errors (hwbench/configcheck.py): short, naming the key path and the value, and
caught before Snakemake plans a job; and a schema that leaves no mapping unchecked."""

from __future__ import annotations

import copy

import pytest
import yaml

from hwbench import configcheck, configdoc
from tests.conftest import REPO, deep_update, run_snakemake

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def load(*names: str) -> dict:
    config: dict = {}
    for name in names:
        config = deep_update(config, yaml.safe_load((REPO / name).read_text(encoding="utf-8")))
    return config


@pytest.fixture(scope="module")
def default():
    return load("config.yaml")


def problems_of(config: dict) -> list[str]:
    return configcheck.schema_problems(config, SCHEMA) + configcheck.reference_problems(config)


@pytest.mark.parametrize(
    "files",
    [
        ("config.yaml",),
        ("config.yaml", "config/paper.yaml"),
        ("config.yaml", "config/paper.yaml", "config/rehearsal.yaml"),
        ("config.yaml", "config/paper.yaml", "config/transfer28.yaml"),
    ],
    ids=lambda f: "+".join(f),
)
def test_the_shipped_configs_pass(files):
    configcheck.check(load(*files), SCHEMA)


def test_an_unknown_key_is_named_with_the_schema_key_it_resembles(default):
    config = copy.deepcopy(default)
    config["gpu_per_job"] = 1
    config["multiscript"]["seed"] = [0]
    assert problems_of(config) == [
        "gpu_per_job = 1: unknown key; did you mean gpus_per_job?",
        "multiscript.seed = [0]: unknown key; did you mean seeds?",
    ]


def test_an_unknown_key_without_a_close_match_lists_the_known_ones(default):
    config = copy.deepcopy(default)
    config["splits"]["zzz"] = 1
    (line,) = problems_of(config)
    assert line.startswith("splits.zzz = 1: unknown key; known keys: seed, val_fraction")


def test_per_dataset_training_overrides_are_checked_against_the_train_schema(default):
    config = copy.deepcopy(default)
    config["adaptation"]["train_per_dataset"] = {
        "synth_writers": {"activation_checkpointing": "sometimes", "epochz": 3}
    }
    assert problems_of(config) == [
        "adaptation.train_per_dataset.synth_writers.activation_checkpointing = 'sometimes': "
        "must be one of never, always, cpu",
        "adaptation.train_per_dataset.synth_writers.epochz = 3: unknown key; did you mean epochs?",
    ]


def test_wrong_types_and_values_name_the_path_and_the_value(default):
    config = copy.deepcopy(default)
    config["onemodel"]["tasks"][1]["kind"] = "classfy"
    config["transfer"]["resources"]["threads"] = "four"
    assert problems_of(config) == [
        "onemodel.tasks[1].kind = 'classfy': must be one of classify, spot, both",
        "transfer.resources.threads = 'four': must be of type integer",
    ]


@pytest.mark.parametrize("name", ["nope", "../escape"])
def test_a_study_source_naming_no_dataset_is_refused_with_its_key(default, name):
    config = copy.deepcopy(default)
    config["multiscript"]["sources"]["latin"]["dataset"] = name
    with pytest.raises(configcheck.ConfigError, match=r"multiscript\.sources\.latin\.dataset"):
        configcheck.check(config, SCHEMA)


def test_dataset_references_of_every_study_are_checked(default):
    config = copy.deepcopy(default)
    config["transfer"]["tasks"]["digits_a"]["dataset"] = "synth_writerz"
    config["onemodel"]["tasks"][0]["dataset"] = "mnsit"
    config["lifelong"]["dataset"] = "nowhere"
    config["adaptation"]["paper"] = {"deepwritting": "deepwriting"}
    config["splits"]["schemes"]["mnits"] = ["stratified"]
    lines = configcheck.reference_problems(config)
    assert lines[0].startswith("transfer.tasks.digits_a.dataset = 'synth_writerz'")
    assert "did you mean synth_writers?" in lines[0]
    assert [line.split(" = ")[0] for line in lines[1:]] == [
        "onemodel.tasks[0].dataset",
        "adaptation.paper.deepwritting",
        "lifelong.dataset",
        "splits.schemes.mnits",
    ]
    assert "did you mean mnist?" in lines[1] and "did you mean deepwriting?" in lines[2]


def test_a_charset_a_synthetic_dataset_does_not_render_is_refused(default):
    config = copy.deepcopy(default)
    config["multiscript"]["sources"]["amharic"]["dataset"] = "synth_writers_a"
    assert configcheck.reference_problems(config) == [
        "multiscript.sources.amharic.charset = 'amharic': synth.synth_writers_a renders no "
        "amharic (its scripts: latin_digits)"
    ]


def test_a_source_no_configured_group_uses_selects_nothing(default):
    """Only planned jobs' charsets are checked: the amharic source of a digits-only run
    may name a dataset that renders no Amharic (the tests' small DAGs do)."""
    config = copy.deepcopy(default)
    config["multiscript"]["groups"] = ["digits"]
    config["multiscript"]["sources"]["amharic"]["dataset"] = "synth_writers_a"
    assert configcheck.reference_problems(config) == []


def test_task_and_set_names_are_checked_with_their_key(default):
    config = copy.deepcopy(default)
    first = next(iter(config["transfer"]["sets"]))
    config["transfer"]["sets"][first]["target"] = "nope"
    with pytest.raises(configcheck.ConfigError, match=rf"transfer\.sets\.{first}\.target = 'nope'"):
        configcheck.check_references(config)
    config = copy.deepcopy(default)
    config["lifelong"]["orders"] = ["nobody_else"]
    with pytest.raises(configcheck.ConfigError):
        configcheck.check_references(config)


def test_many_problems_make_a_short_message(default):
    config = copy.deepcopy(default)
    for i in range(30):
        config[f"typo{i}"] = i
    with pytest.raises(configcheck.ConfigError) as err:
        configcheck.check_schema(config, SCHEMA)
    lines = str(err.value).splitlines()
    assert len(lines) == configcheck.MAX_PROBLEMS + 3
    assert lines[0] == "the config does not match the schema (30 problems):"
    assert lines[-2] == f"  ... and {30 - configcheck.MAX_PROBLEMS} more"


def _objects(node, folder, root, path="config"):
    """(key path, schema node) of every mapping the schema describes."""
    node, folder, root = configdoc._resolve(node, folder, root)
    if node.get("type") == "object" or "properties" in node:
        yield path, node
    children = [(f"{path}.{k}", v) for k, v in node.get("properties", {}).items()]
    children += [(f"{path}.<{p}>", v) for p, v in node.get("patternProperties", {}).items()]
    if isinstance(node.get("additionalProperties"), dict):
        children.append((f"{path}.<name>", node["additionalProperties"]))
    if isinstance(node.get("items"), dict):
        children.append((f"{path}[]", node["items"]))
    for child_path, child in children:
        yield from _objects(child, folder, root, child_path)


def test_every_mapping_of_the_config_is_covered_by_the_schema():
    """No mapping lets keys through unchecked: each says which keys it takes (a closed
    set, or a schema for every value)."""
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    mappings = list(_objects(schema, SCHEMA.parent, schema))
    assert "config.adaptation.train_per_dataset.<name>" in [p for p, _ in mappings]
    open_ = [
        path
        for path, node in mappings
        if node.get("additionalProperties") is not False
        and not (
            isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]
        )
    ]
    assert not open_, f"mappings that let any key through: {open_}"


def _snakemake_error(workdir, *args):
    proc = run_snakemake(workdir, "-n", *args, check=False, timeout=120)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_snakemake_prints_a_top_level_typo_in_a_few_lines_with_a_suggestion(workdir):
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    out = _snakemake_error(workdir, "--config", "gpu_per_job=1")
    assert len(out.splitlines()) <= 20, out
    assert "gpu_per_job = 1: unknown key; did you mean gpus_per_job?" in out


def test_snakemake_refuses_a_bad_source_dataset_before_planning(workdir):
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    (workdir / "bad.yaml").write_text(
        "multiscript:\n  sources:\n    latin: {dataset: nope, charset: latin_digits}\n"
    )
    out = _snakemake_error(
        workdir, "--configfile", str(workdir / "config.yaml"), str(workdir / "bad.yaml")
    )
    assert len(out.splitlines()) <= 20, out
    assert "multiscript.sources.latin.dataset = 'nope'" in out
    assert "MissingInputException" not in out and "Job stats" not in out
