"""The OneModel study's plan (torch-free): its runs, each job's inputs and params.

workflow/rules/onemodel.smk calls these functions; they take the ``onemodel``
config section and wildcard values and return paths and dicts. A job's params hold
exactly what it uses (a task's keys only reach the runs that train on it, the prime
only the djb2 run, ``paper_row`` only the report), so a config edit reruns only the
jobs it changes. The job and the report never import this module: an edit here
reruns nothing whose inputs or params stay the same.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from hwbench.studies.onemodel.spec import JOINT, SINGLE, TRAIN_KEYS, parse_tasks, run_mode

RUN_DIR = "results/onemodel/{run}/seed{seed}"
EVAL = RUN_DIR + "/eval.json"
METRICS = RUN_DIR + "/metrics.csv"
BENCHMARK = "benchmarks/jobs/onemodel/{run}/seed{seed}.tsv"
TABLE = "onemodel"  # reports/onemodel.csv (.md, .json, .html)
TARGETS = [f"reports/{TABLE}.csv"]
# Config keys the report does not read: how a job is run, not what it computes.
NOT_REPORTED = ("resources",)


def checked(om: Mapping) -> Mapping:
    """The config section, after checks the schema cannot make (task names, kinds,
    charsets; early stopping needs the validation set)."""
    parse_tasks(om["tasks"])
    stopping = {k: om["train"][k] for k in ("patience", "stop_eps") if om["train"].get(k)}
    if stopping and not om["validation"]:
        raise ValueError(
            f"onemodel.train {stopping} stops early on the validation set, but "
            "onemodel.validation is false (train on the full training set, as the paper): "
            "set onemodel.validation: true or remove them"
        )
    return om


def discriminators(om: Mapping) -> list[str]:
    """The joint runs' discriminators: the main one first, then the compared ones."""
    return list(dict.fromkeys([om["discriminator"], *om["compare_discriminators"]]))


def task_names(om: Mapping) -> list[str]:
    return [t["name"] for t in om["tasks"]]


def runs(om: Mapping) -> list[str]:
    """Run names: ``joint_<discriminator>`` each, plus ``single_<task>`` when configured."""
    names = [f"{JOINT}_{d}" for d in discriminators(om)]
    if om["single"]:
        names += [f"{SINGLE}_{t}" for t in task_names(om)]
    return names


def run_tasks(om: Mapping, run: str) -> list[str]:
    """The tasks a run trains on: all of them (joint) or its own (single)."""
    mode, rest = run_mode(run)
    return task_names(om) if mode == JOINT else [rest]


def task_spec(om: Mapping, task: str) -> Mapping:
    for spec in om["tasks"]:
        if spec["name"] == task:
            return spec
    raise ValueError(f"onemodel: no task {task!r}; tasks are {task_names(om)}")


def task_data(om: Mapping, task: str) -> dict[str, str]:
    """The processed dataset folder and split file a task reads."""
    dataset = task_spec(om, task)["dataset"]
    return {
        "processed": f"data/processed/{dataset}",
        "split": f"data/splits/{dataset}/{om['split']}.csv",
    }


def train_inputs(om: Mapping, run: str, buildable: Collection[str]) -> dict[str, str]:
    """The processed datasets and split files of the run's tasks.

    ``buildable``: the datasets some rule can build; a task on another one is an
    error naming it (raised when a job needs it, so other targets still plan).
    """
    out = {}
    for task in run_tasks(om, run):
        dataset = task_spec(om, task)["dataset"]
        if dataset not in buildable:
            raise ValueError(
                f"onemodel task {task!r}: no rule builds dataset {dataset!r} yet "
                f"(buildable: {sorted(buildable)}); docs/onemodel.md lists what is left out"
            )
        data = task_data(om, task)
        out[f"images_{task}"] = f"{data['processed']}/images.npy"
        out[f"meta_{task}"] = f"{data['processed']}/meta.csv"
        out[f"split_{task}"] = data["split"]
    return out


def train_params(om: Mapping, run: str, seed: int) -> dict:
    """Exactly the config one job uses (job.spec_from_dict reads it), so other
    changes rerun nothing of it."""
    mode, rest = run_mode(run)
    discriminator = rest if mode == JOINT else "none"
    tasks = run_tasks(om, run)
    return {
        "run": run,
        "mode": mode,
        "tasks": [
            {
                k: v
                for k, v in task_spec(om, t).items()
                if k in TRAIN_KEYS and (mode == JOINT or k != "hash")
            }
            for t in tasks
        ],
        "discriminator": discriminator,
        "prime": om["prime"] if discriminator == "djb2" else None,
        "levels": om["phoc_levels"],
        "canvas": om["canvas"],
        "model": om["model"],
        "train": om["train"],
        "seed": int(seed),
        "data": {t: task_data(om, t) for t in tasks},
        "validation": bool(om["validation"]),
        "resident_mb": om.get("resident_mb", 2048),
    }


def run_files(om: Mapping, pattern: str) -> list[str]:
    """``pattern`` (EVAL, METRICS, BENCHMARK) for every run and seed."""
    return [pattern.format(run=r, seed=s) for r in runs(om) for s in om["seeds"]]


def report_inputs(om: Mapping) -> dict[str, list[str]]:
    """Every run's eval.json and metrics.csv, and the datasets (for provenance)."""
    datasets = sorted({t["dataset"] for t in om["tasks"]})
    return {
        "evals": run_files(om, EVAL),
        "metrics": run_files(om, METRICS),
        "datasets": [
            f"data/processed/{d}/{name}" for d in datasets for name in ("images.npy", "meta.csv")
        ],
    }


def report_config(om: Mapping) -> dict:
    """The config the report reads (and records in its provenance)."""
    return {k: v for k, v in om.items() if k not in NOT_REPORTED}
