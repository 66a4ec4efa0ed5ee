# The transfer study (docs/transfer.md): reports/transfer.csv and its figures.
#
# Per seed: one source model per source task (transfer_source), saved as model.pt;
# per set x mode one training job (transfer_train). The frozen and fine-tuned jobs of
# a seed list that source model.pt as an input, so the DAG trains it once and both
# start from the same file; control jobs do not depend on it. Each job's params hold
# only what it uses: a change to the target task reruns that set's jobs, a change to
# the source task reruns the source model and the jobs that start from it.


include: "functions/transfer.smk"


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


tr_check_sets()
ALL_TARGETS.append("reports/transfer.csv")


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
        csv="reports/transfer.csv",
        html=report(
            "reports/transfer.html",
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
