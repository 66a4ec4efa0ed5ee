# Input and parameter functions of workflow/rules/transfer.smk (kept apart from the
# rules, as `snakemake --lint` asks).


def tr_check_sets():
    """Every set names tasks that exist: a clear error before anything runs."""
    for name, spec in TR["sets"].items():
        for role in ("source", "target"):
            if spec[role] not in TR["tasks"]:
                raise ValueError(
                    f"config transfer.sets.{name}.{role} = {spec[role]!r} is not a task; "
                    f"transfer.tasks has {sorted(TR['tasks'])}"
                )
    pcs = TR.get("per_class_set")
    if pcs is not None and pcs not in TR["sets"]:
        raise ValueError(
            f"config transfer.per_class_set = {pcs!r} is not a set; sets: {list(TR['sets'])}"
        )


def tr_task_data(task_name):
    """Processed dataset (and split file) a task reads."""
    task = TR["tasks"][task_name]
    data = {
        "images": f"data/processed/{task['dataset']}/images.npy",
        "meta": f"data/processed/{task['dataset']}/meta.csv",
    }
    if task["split"]["scheme"] in TR_SPLIT_FILES:
        data["split"] = f"data/splits/{task['dataset']}/{task['split']['scheme']}.csv"
    return data


def tr_source_dir(task_name, seed):
    return f"results/transfer/sources/{task_name}/seed{seed}"


def tr_train_inputs(wildcards):
    """The target task's data; for frozen / fine-tuned also the seed's source model."""
    spec = TR["sets"][wildcards.set]
    inputs = tr_task_data(spec["target"])
    if wildcards.mode != "control":
        source = tr_source_dir(spec["source"], wildcards.seed)
        inputs["source_model"] = f"{source}/model.pt"
        inputs["source_eval"] = f"{source}/eval.json"
    return inputs


def tr_train_params(wildcards):
    """What a set x mode job uses (not the set's title or paper_set: the report's)."""
    params = {
        "target": TR["tasks"][TR["sets"][wildcards.set]["target"]],
        "model": TR["model"],
        "train": TR["train"],
    }
    if wildcards.mode != "control":
        params["head_init"] = TR["head_init"]
    return params


def tr_runs():
    return [
        f"results/transfer/sets/{s}/{mode}/seed{seed}"
        for s in TR["sets"]
        for mode in TR_MODES
        for seed in TR["seeds"]
    ]


def tr_source_runs():
    sources = sorted({spec["source"] for spec in TR["sets"].values()})
    return [tr_source_dir(task, seed) for task in sources for seed in TR["seeds"]]


def tr_datasets():
    used = {
        TR["tasks"][spec[r]]["dataset"]
        for spec in TR["sets"].values()
        for r in ("source", "target")
    }
    return sorted(used)
