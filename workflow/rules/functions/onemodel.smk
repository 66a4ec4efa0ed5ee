# Input and parameter functions of workflow/rules/onemodel.smk (kept apart from the
# rules, as `snakemake --lint` asks).


def om_run_tasks(run):
    return OM_TASKS if run.startswith("joint_") else [run[len("single_") :]]


def om_task_data(task):
    dataset = OM_TASK_SPECS[task]["dataset"]
    known = {*SYNTH_DATASETS, *REAL_ARRAY_DATASETS, *IMAGE_DATASETS}
    if dataset not in known:
        raise ValueError(
            f"onemodel task {task!r}: no rule builds dataset {dataset!r} yet "
            f"(buildable: {sorted(known)}); docs/onemodel.md lists what is left out"
        )
    return {
        "processed": f"data/processed/{dataset}",
        "split": f"data/splits/{dataset}/{OM['split']}.csv",
    }


def om_inputs(wildcards):
    """The processed datasets and split files of the run's tasks."""
    out = {}
    for task in om_run_tasks(wildcards.run):
        data = om_task_data(task)
        out[f"images_{task}"] = f"{data['processed']}/images.npy"
        out[f"meta_{task}"] = f"{data['processed']}/meta.csv"
        out[f"split_{task}"] = data["split"]
    return out


def om_spec(wildcards):
    """Exactly the config one job uses, so other changes rerun nothing of it."""
    run, tasks = wildcards.run, om_run_tasks(wildcards.run)
    mode = "joint" if run.startswith("joint_") else "single"
    discriminator = run[len("joint_") :] if mode == "joint" else "none"
    return {
        "mode": mode,
        "tasks": [
            {
                k: v
                for k, v in OM_TASK_SPECS[t].items()
                if k in OM_TASK_TRAIN_KEYS and (mode == "joint" or k != "hash")
            }
            for t in tasks
        ],
        "discriminator": discriminator,
        "prime": OM["prime"] if discriminator == "djb2" else None,
        "levels": OM["phoc_levels"],
        "canvas": OM["canvas"],
        "model": OM["model"],
        "train": OM["train"],
        "seed": int(wildcards.seed),
        "data": {t: om_task_data(t) for t in tasks},
    }
