# The transfer study (docs/transfer.md): reports/transfer.csv and its figures.
#
# Per seed: one source model per source task (transfer_source), saved as model.pt;
# per set x mode one training job (transfer_train). The frozen and fine-tuned jobs of
# a seed list that source model.pt as an input, so the DAG trains it once and both
# start from the same file; control jobs do not depend on it. Each job's params hold
# only what it uses: a change to the target task reruns that set's jobs, a change to
# the source task reruns the source model and the jobs that start from it.

TR = config["transfer"]
TR_MODES = ["control", "frozen", "finetuned"]  # hwbench.studies.transfer.MODES (tested)
TR_SPLIT_FILES = ["stratified", "writer"]  # schemes read from data/splits/
TR_TRAIN_CODE = hw(
    "studies/transfer.py",
    "engine.py",
    "models.py",
    "data.py",
    "metrics.py",
    "store.py",
    "charsets.py",
    "logs.py",
)


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


tr_check_sets()
ALL_TARGETS.append("reports/transfer.csv")


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


# model.pt and eval.json are written when the run has finished; metrics.csv and
# checkpoint.pt beside them are not declared (Snakemake deletes declared outputs
# before a rerun, and the engine resumes an interrupted run from them).
rule transfer_source:
    input:
        unpack(lambda wildcards: tr_task_data(wildcards.task)),
        script=script_path("transfer_train.py"),
        code=TR_TRAIN_CODE,
    output:
        model="results/transfer/sources/{task}/seed{seed}/model.pt",
        eval="results/transfer/sources/{task}/seed{seed}/eval.json",
    log:
        "logs/transfer/sources/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/jobs/transfer/sources/{task}/seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    threads: TR["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=TR["resources"]["mem_mb"],
        runtime=TR["resources"]["runtime"],
    params:
        task=lambda wildcards: TR["tasks"][wildcards.task],
        model=TR["model"],
        train=TR["train"],
    script:
        "../scripts/transfer_train.py"


rule transfer_train:
    input:
        unpack(tr_train_inputs),
        script=script_path("transfer_train.py"),
        code=TR_TRAIN_CODE,
    output:
        eval="results/transfer/sets/{set}/{mode}/seed{seed}/eval.json",
    log:
        "logs/transfer/sets/{set}/{mode}/seed{seed}.log",
    benchmark:
        "benchmarks/jobs/transfer/sets/{set}/{mode}/seed{seed}.tsv"
    wildcard_constraints:
        mode="|".join(TR_MODES),
        seed=r"\d+",
    threads: TR["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=TR["resources"]["mem_mb"],
        runtime=TR["resources"]["runtime"],
    params:
        job=tr_train_params,
    script:
        "../scripts/transfer_train.py"


rule transfer_report:
    input:
        evals=[f"{run}/eval.json" for run in tr_runs()],
        data=[
            f"data/processed/{d}/{f}"
            for d in tr_datasets()
            for f in ("images.npy", "meta.csv")
        ],
        script=script_path("transfer_report.py"),
        code=hw(
            "studies/transfer.py", "report.py", "store.py", "charsets.py", "logs.py"
        ),
    output:
        csv=report(
            "reports/transfer.csv",
            caption="../report/transfer/table.rst",
            category="transfer",
        ),
        md="reports/transfer.md",
        json="reports/transfer.json",
        f1=report(
            "reports/transfer_f1.png",
            caption="../report/transfer/f1.rst",
            category="transfer",
        ),
        per_class=report(
            "reports/transfer_per_class.png",
            caption="../report/transfer/per_class.rst",
            category="transfer",
        ),
        frozen=report(
            "reports/transfer_frozen.png",
            caption="../report/transfer/frozen.rst",
            category="transfer",
        ),
    log:
        "logs/transfer/report.log",
    benchmark:
        "benchmarks/jobs/transfer/report.tsv"
    params:
        sets=TR["sets"],
        per_class_set=TR.get("per_class_set"),
        config=TR,
        benchmarks=[
            f"benchmarks/jobs/transfer/{run.removeprefix('results/transfer/')}.tsv"
            for run in tr_runs() + tr_source_runs()
        ],
    script:
        "../scripts/transfer_report.py"
