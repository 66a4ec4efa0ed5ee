"""The adaptation study's plan (torch-free): its runs, each job's inputs and params,
and its targets. workflow/rules/adaptation.smk calls these; nothing here is imported
by a job, so editing the plan reruns only jobs whose inputs or params change."""

from __future__ import annotations

from collections.abc import Mapping

from hwbench.studies.adaptation.spec import DATASET_STEPS, KNN_WEIGHTS

TARGET = "reports/adaptation.csv"
BASE_TARGET = "reports/adaptation_base.csv"


def datasets(cfg: Mapping) -> list[str]:
    return list(cfg.get("datasets", []))


def runs(cfg: Mapping) -> list[tuple[str, str]]:
    """(dataset, KNN weighting) of every per-writer loop job: a table row each."""
    return [(d, w) for d in datasets(cfg) for w in cfg.get("knn_weights", [])]


def dataset_pattern() -> str:
    """Wildcard constraint of {dataset}: a processed dataset's name."""
    return "[A-Za-z][A-Za-z0-9_]*"


def weights_pattern() -> str:
    return "|".join(KNN_WEIGHTS)


def charsets(cfg: Mapping, dataset: str) -> list[str] | None:
    """The charsets whose classes ``dataset`` keeps (None: every class)."""
    return (cfg.get("charsets") or {}).get(dataset)


def train_settings(cfg: Mapping, dataset: str) -> dict:
    """The base CNN's training settings for ``dataset``: ``train`` updated by that
    dataset's ``train_per_dataset`` entry (e.g. DeepWriting's early stopping)."""
    return {**cfg["train"], **(cfg.get("train_per_dataset") or {}).get(dataset, {})}


def base_dir(dataset: str) -> str:
    return f"results/adaptation/{dataset}/base"


def data_inputs(dataset: str) -> dict[str, str]:
    """The processed dataset and its writer split: what the CNN jobs read."""
    return {
        "images": f"data/processed/{dataset}/images.npy",
        "meta": f"data/processed/{dataset}/meta.csv",
        "split": f"data/splits/{dataset}/writer.csv",
    }


def report_inputs(cfg: Mapping) -> dict[str, list[str]]:
    """Every file the report reads: loop outputs, style checks, base CNN records, the
    datasets (for provenance) and the jobs' benchmark files (wall time)."""
    ds, rs = datasets(cfg), runs(cfg)
    return {
        "scores": [f"results/adaptation/{d}/{w}/scores.csv" for d, w in rs],
        "predictions": [f"results/adaptation/{d}/{w}/predictions.csv" for d, w in rs],
        "quality": [f"results/adaptation/{d}/style_quality.csv" for d in ds],
        "evals": [f"{base_dir(d)}/eval.json" for d in ds],
        "data": [f"data/processed/{d}/{f}" for d in ds for f in ("images.npy", "meta.csv")],
        "benchmarks": [f"benchmarks/jobs/adaptation/{d}/{s}.tsv" for d in ds for s in DATASET_STEPS]
        + [f"benchmarks/jobs/adaptation/{d}/{w}/adapt.tsv" for d, w in rs],
    }


def base_table_config(cfg: Mapping) -> dict:
    """What the base-CNN table depends on (its provenance): not the KNN loop's keys,
    so a loop option does not rebuild it."""
    keys = ("datasets", "paper", "charsets", "model", "seed", "train", "train_per_dataset")
    return {k: cfg.get(k) for k in keys}


def targets(cfg: Mapping) -> list[str]:
    return [TARGET, BASE_TARGET] if datasets(cfg) else []
