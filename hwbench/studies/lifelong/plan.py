"""The lifelong study's plan (torch-free): config checks, runs, job inputs and params.

workflow/rules/lifelong.smk calls these with the ``lifelong`` config section
(``ll``). One job per (method, task order, seed) trains a whole task sequence;
the multi-task upper bound is one job per seed; the curriculum order comes from
one job that scores every writer. Each job's params hold only what it uses:
changing the EWC lambda reruns the EWC jobs and the report, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping

from hwbench.studies.lifelong.spec import (
    CURRICULUM,
    MULTITASK,
    SEQUENTIAL_METHODS,
    parse_order,
)

TABLE = "reports/lifelong.csv"
CURRICULUM_ORDER = "results/lifelong/curriculum/order.json"
CURRICULUM_BENCHMARK = "benchmarks/jobs/lifelong/curriculum.tsv"

# Config keys every job reads; each job kind adds its own section.
SHARED_KEYS = ("writers", "labels", "train_splits", "test_split", "input", "model", "train")


def check_config(ll: Mapping) -> None:
    """Every configured order names each task of ``lifelong.writers`` once (or is
    ``curriculum``): a typo fails the plan, not a job hours in."""
    for order in ll["orders"]:
        if order != CURRICULUM:
            parse_order(order, ll["writers"])


def runs(ll: Mapping) -> list[str]:
    """Run folders of every job the table needs."""
    out = []
    for method in ll["methods"]:
        for seed in ll["seeds"]:
            if method == MULTITASK:
                out.append(f"results/lifelong/{MULTITASK}/s{seed}")
            else:
                out += [f"results/lifelong/{method}/{o}/s{seed}" for o in ll["orders"]]
    return out


def report_inputs(ll: Mapping) -> dict[str, list[str]]:
    """The report's per-run files and the dataset it describes (for provenance)."""
    folders = runs(ll)
    data = data_inputs(ll)
    return {
        "evals": [f"{run}/eval.json" for run in folders],
        "curves": [f"{run}/curves.csv" for run in folders],
        "matrices": [f"{run}/R.csv" for run in folders if f"/{MULTITASK}/" not in run],
        "dataset": [data["images"], data["meta"]],
    }


def benchmarks(ll: Mapping) -> list[str]:
    """Snakemake benchmark files of the table's jobs (their wall time goes in the .json)."""
    files = [run.replace("results/", "benchmarks/jobs/", 1) + ".tsv" for run in runs(ll)]
    return [*files, CURRICULUM_BENCHMARK]


def data_inputs(ll: Mapping) -> dict[str, str]:
    """The processed dataset, its split file and (raw input only) the raw manifest."""
    ds = ll["dataset"]
    files = {
        "images": f"data/processed/{ds}/images.npy",
        "meta": f"data/processed/{ds}/meta.csv",
        "split": f"data/splits/{ds}/{ll['split']}.csv",
    }
    if ll["input"]["source"] == "raw":
        files["raw"] = f"data/raw/{ds}/manifest.csv"
    return files


def sequence_inputs(ll: Mapping, order: str) -> dict[str, str]:
    """A sequence job's data, plus the computed order when it runs the curriculum."""
    files = data_inputs(ll)
    if order == CURRICULUM:
        files["order"] = CURRICULUM_ORDER
    return files


def job_cfg(ll: Mapping, *sections: str) -> dict:
    """The config a job uses: the shared keys, ``device`` and the named sections."""
    return {k: ll.get(k) for k in [*SHARED_KEYS, "device", *sections]}


def sequence_cfg(ll: Mapping, method: str) -> dict:
    """A sequence job's config: the EWC section only for EWC (basic ignores lambda)."""
    if method not in SEQUENTIAL_METHODS:
        raise ValueError(f"method {method!r}: sequential methods are {SEQUENTIAL_METHODS}")
    return job_cfg(ll, "ewc") if method == "ewc" else job_cfg(ll)
