# Input and parameter functions of workflow/rules/multiscript.smk (kept apart from the
# rules, as `snakemake --lint` asks).


def ms_check_config():
    """Every group in multiscript.groups has its scripts' sources and Wloss sigmas."""
    for group in MS["groups"]:
        needed = [
            f"sources.{s}" for s in MS_GROUP_SCRIPTS[group] if s not in MS["sources"]
        ]
        if group not in MS["wloss"]:
            needed.append(f"wloss.{group}")
        if needed:
            keys = ", ".join(f"multiscript.{k}" for k in needed)
            raise ValueError(
                f"multiscript.groups has {group!r}, which needs {keys} in the config "
                f"(see config.yaml); add them or remove {group!r} from multiscript.groups"
            )


def ms_runs():
    """Run folders of every training job the table needs."""
    return [
        f"results/multiscript/{group}/{model}/seed{seed}"
        for group in MS["groups"]
        for model in MS_MODELS[group]
        for seed in MS["seeds"]
    ]


def ms_datasets():
    """Processed files of every dataset the study reads (for the provenance)."""
    names = sorted(
        {MS["sources"][s]["dataset"] for g in MS["groups"] for s in MS_GROUP_SCRIPTS[g]}
    )
    return [
        f"data/processed/{d}/{f}" for d in names for f in ("images.npy", "meta.csv")
    ]


def ms_scripts(wildcards):
    """The scripts a job trains and is tested on."""
    return MS_SCRIPTS.get(wildcards.model, MS_GROUP_SCRIPTS[wildcards.group])


def ms_data(wildcards):
    """Processed data and split files of the job's scripts, in script order."""
    datasets = [MS["sources"][s]["dataset"] for s in ms_scripts(wildcards)]
    return {
        "images": [f"data/processed/{d}/images.npy" for d in datasets],
        "meta": [f"data/processed/{d}/meta.csv" for d in datasets],
        "splits": [f"data/splits/{d}/{MS['split']}.csv" for d in datasets],
    }


def ms_method_params(wildcards):
    """The model's own hyper-parameters (for this group only)."""
    model = wildcards.model
    if model == "wloss":
        return MS["wloss"][wildcards.group]
    if model in ("uw", "new"):
        return MS[model]
    return {}
