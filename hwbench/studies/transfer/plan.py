"""The transfer study's runs, each job's inputs and params (torch-free; the .smk calls it).

Per seed: one source model per source task (rule transfer_source), saved as model.pt;
per set x mode one training job (rule transfer_train). The frozen and fine-tuned jobs
of a seed list that source model.pt as an input, so the DAG trains it once and both
start from the same file; control jobs do not depend on it. Each job's params hold
only what it uses: a change to the target task reruns that set's jobs, a change to
the source task reruns the source model and the jobs that start from it.

Every function takes the config's ``transfer`` section (``tr``) and wildcard values
and returns paths or dicts. Nothing here is imported by the job or the report, so
an edit here reruns only jobs whose params or inputs change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from hwbench.studies.transfer.spec import MODES, SPLIT_FILE_SCHEMES, check_split

TABLE = "reports/transfer.csv"
SOURCE_RUN = "results/transfer/sources/{task}/seed{seed}"
SET_RUN = "results/transfer/sets/{set}/{mode}/seed{seed}"


def targets() -> list[str]:
    """What `rule all` builds for this study."""
    return [TABLE]


def one_of(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly one of ``names``."""
    return "|".join(re.escape(str(n)) for n in names)


# --- config checks --------------------------------------------------------------------


def check_config(tr: Mapping) -> None:
    """Errors the schema cannot see, before anything runs: each names the key."""
    for name, spec in tr["sets"].items():
        for role in ("source", "target"):
            if spec[role] not in tr["tasks"]:
                raise ValueError(
                    f"config transfer.sets.{name}.{role} = {spec[role]!r} is not a task; "
                    f"transfer.tasks has {sorted(tr['tasks'])}"
                )
    for name, task in tr["tasks"].items():
        check_split(task["split"], f"config transfer.tasks.{name}.split")
    pcs = tr.get("per_class_set")
    if pcs is not None and pcs not in tr["sets"]:
        raise ValueError(
            f"config transfer.per_class_set = {pcs!r} is not a set; sets: {list(tr['sets'])}"
        )


# --- paths ------------------------------------------------------------------------------


def source_run(task: str, seed) -> str:
    """Folder of the source model of ``task`` for ``seed``."""
    return SOURCE_RUN.format(task=task, seed=seed)


def set_run(set_name: str, mode: str, seed) -> str:
    """Folder of one set x mode x seed run."""
    return SET_RUN.format(set=set_name, mode=mode, seed=seed)


def log_file(run: str) -> str:
    """The Snakemake log of a run folder (or of a pattern of one)."""
    return "logs/" + run.removeprefix("results/") + ".log"


def benchmark_file(run: str) -> str:
    """The Snakemake benchmark file of a run folder (or of a pattern of one)."""
    return "benchmarks/jobs/" + run.removeprefix("results/") + ".tsv"


# --- training jobs ------------------------------------------------------------------------


def task_inputs(tr: Mapping, task_name: str) -> dict[str, str]:
    """Processed dataset (and split file, for a split-file scheme) that a task reads."""
    task = tr["tasks"][task_name]
    data = {
        "images": f"data/processed/{task['dataset']}/images.npy",
        "meta": f"data/processed/{task['dataset']}/meta.csv",
    }
    if task["split"]["scheme"] in SPLIT_FILE_SCHEMES:
        data["split"] = f"data/splits/{task['dataset']}/{task['split']['scheme']}.csv"
    return data


def source_params(tr: Mapping, task_name: str) -> dict:
    """What a source job uses: its task, the model and the training settings."""
    return {
        "task": tr["tasks"][task_name],
        "model": tr["model"],
        "train": tr["train"],
        "resident_mb": tr.get("resident_mb", 2048),
    }


def train_inputs(tr: Mapping, set_name: str, mode: str, seed) -> dict[str, str]:
    """The target task's data; for frozen / fine-tuned also the seed's source model."""
    spec = tr["sets"][set_name]
    inputs = task_inputs(tr, spec["target"])
    if mode != "control":
        source = source_run(spec["source"], seed)
        inputs["source_model"] = f"{source}/model.pt"
        inputs["source_eval"] = f"{source}/eval.json"
    return inputs


def train_params(tr: Mapping, set_name: str, mode: str) -> dict:
    """What a set x mode job uses (not the set's title or paper_set: the report's)."""
    params = {
        "target": tr["tasks"][tr["sets"][set_name]["target"]],
        "model": tr["model"],
        "train": tr["train"],
        "resident_mb": tr.get("resident_mb", 2048),
    }
    if mode != "control":
        params["head_init"] = tr["head_init"]
    return params


# --- the report ---------------------------------------------------------------------------


def runs(tr: Mapping) -> list[str]:
    """Every set x mode x seed run folder, in the table's order."""
    return [set_run(s, m, seed) for s in tr["sets"] for m in MODES for seed in tr["seeds"]]


def source_runs(tr: Mapping) -> list[str]:
    """Every source model folder (one per source task and seed)."""
    sources = sorted({spec["source"] for spec in tr["sets"].values()})
    return [source_run(task, seed) for task in sources for seed in tr["seeds"]]


def datasets(tr: Mapping) -> list[str]:
    """Processed datasets the sets' tasks read."""
    used = {
        tr["tasks"][spec[role]]["dataset"]
        for spec in tr["sets"].values()
        for role in ("source", "target")
    }
    return sorted(used)


def report_evals(tr: Mapping) -> list[str]:
    return [f"{run}/eval.json" for run in runs(tr)]


def report_data(tr: Mapping) -> list[str]:
    """Dataset files whose checksums go in the table's provenance."""
    return [f"data/processed/{d}/{f}" for d in datasets(tr) for f in ("images.npy", "meta.csv")]


def report_benchmarks(tr: Mapping) -> list[str]:
    """Benchmark files of every training job (wall time per job in the provenance)."""
    return [benchmark_file(run) for run in runs(tr) + source_runs(tr)]
