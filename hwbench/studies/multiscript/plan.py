"""What the multiscript study runs, as plain functions of its config section
(torch-free; workflow/rules/multiscript.smk calls them).

One training job per (group, model, seed): group "digits" trains Lat/Arab/Kan (one
script each) and Base/Wloss/UW/New (30 classes); group "amharic" trains
Base/Wloss/UW/New on 77 classes. Each job's params hold only what that job uses,
so editing one model's hyper-parameter reruns that model's jobs and the report.
"""

from __future__ import annotations

from collections.abc import Mapping

from hwbench.studies.multiscript.spec import GROUPS, MODELS, check_method, scripts_of

TABLE = "reports/table4.csv"
RUN = "results/multiscript/{group}/{model}/seed{seed}"

# wildcard_constraints of the rules, from the spec (no literal lists in the .smk)
GROUP_PATTERN = "|".join(GROUPS)
MODEL_PATTERN = "|".join(MODELS)
SEED_PATTERN = r"\d+"


def check_config(ms: Mapping) -> None:
    """Every group in multiscript.groups has its scripts' sources and Wloss sigmas."""
    for group in ms["groups"]:
        needed = [f"sources.{s}" for s in GROUPS[group].scripts if s not in ms["sources"]]
        if group not in ms["wloss"]:
            needed.append(f"wloss.{group}")
        if needed:
            keys = ", ".join(f"multiscript.{k}" for k in needed)
            raise ValueError(
                f"multiscript.groups has {group!r}, which needs {keys} in the config "
                f"(see config.yaml); add them or remove {group!r} from multiscript.groups"
            )


def runs(ms: Mapping) -> list[str]:
    """Run folders of every training job the table needs."""
    return [
        RUN.format(group=group, model=model, seed=seed)
        for group in ms["groups"]
        for model in GROUPS[group].methods
        for seed in ms["seeds"]
    ]


def evals(ms: Mapping) -> list[str]:
    """The eval.json of every run, the report's inputs."""
    return [f"{run}/eval.json" for run in runs(ms)]


def benchmarks(ms: Mapping) -> list[str]:
    """Each run's Snakemake benchmark file (wall time per job, for the provenance)."""
    return [run.replace("results/", "benchmarks/jobs/") + ".tsv" for run in runs(ms)]


def datasets(ms: Mapping) -> list[str]:
    """Processed files of every dataset the study reads (for the provenance)."""
    names = sorted({ms["sources"][s]["dataset"] for g in ms["groups"] for s in GROUPS[g].scripts})
    return [f"data/processed/{d}/{f}" for d in names for f in ("images.npy", "meta.csv")]


def sources(ms: Mapping, group: str, model: str) -> dict:
    """The dataset and charset of each script the job trains and is tested on."""
    return {s: ms["sources"][s] for s in scripts_of(group, model)}


def train_inputs(ms: Mapping, group: str, model: str) -> dict[str, list[str]]:
    """Processed data and split files of the job's scripts, in script order."""
    names = [ms["sources"][s]["dataset"] for s in scripts_of(group, model)]
    return {
        "images": [f"data/processed/{d}/images.npy" for d in names],
        "meta": [f"data/processed/{d}/meta.csv" for d in names],
        "splits": [f"data/splits/{d}/{ms['split']}.csv" for d in names],
    }


def method_params(ms: Mapping, group: str, model: str) -> dict:
    """The model's own hyper-parameters (for this group only)."""
    check_method(group, model)
    if model == "wloss":
        return dict(ms["wloss"][group])
    if model in ("uw", "new"):
        return dict(ms[model])
    return {}
