# Input and parameter functions of workflow/rules/lifelong.smk (kept apart from the
# rules, as `snakemake --lint` asks).


def ll_runs():
    """Run folders of every job the table needs."""
    runs = []
    for method in LL["methods"]:
        for seed in LL["seeds"]:
            if method == "multitask":
                runs.append(f"results/lifelong/multitask/s{seed}")
            else:
                runs += [f"results/lifelong/{method}/{o}/s{seed}" for o in LL["orders"]]
    return runs


def ll_benchmarks():
    """Snakemake benchmark files of the table's jobs (their wall time goes in the .json)."""
    files = [
        run.replace("results/", "benchmarks/jobs/", 1) + ".tsv" for run in ll_runs()
    ]
    return files + ["benchmarks/jobs/lifelong/curriculum.tsv"]


def ll_data(wildcards):
    """The processed dataset, its split file and (raw input only) the raw manifest."""
    ds = LL["dataset"]
    files = {
        "images": f"data/processed/{ds}/images.npy",
        "meta": f"data/processed/{ds}/meta.csv",
        "split": f"data/splits/{ds}/{LL['split']}.csv",
    }
    if LL["input"]["source"] == "raw":
        files["raw"] = f"data/raw/{ds}/manifest.csv"
    return files


def ll_cfg(*extra):
    """The config a job uses: the shared keys plus the named sections."""
    keys = [
        "writers",
        "labels",
        "train_splits",
        "test_split",
        "input",
        "model",
        "train",
        "device",
    ]
    return {k: LL.get(k) for k in [*keys, *extra]}


def ll_sequence_cfg(wildcards):
    return ll_cfg("ewc") if wildcards.method == "ewc" else ll_cfg()


def ll_order_input(wildcards):
    if wildcards.order == "curriculum":
        return {"order": "results/lifelong/curriculum/order.json"}
    return {}
