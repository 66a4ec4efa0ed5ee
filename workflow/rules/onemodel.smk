# The OneModel study (docs/onemodel.md): one network with one PHOC output layer on
# every task at once (joint_<discriminator>) versus one model per task
# (single_<task>), one job per run kind and seed, then reports/onemodel.csv.


include: "functions/onemodel.smk"


OM = config["onemodel"]
OM_TASK_SPECS = {t["name"]: t for t in OM["tasks"]}
OM_TASKS = list(OM_TASK_SPECS)
OM_DISCRIMINATORS = list(
    dict.fromkeys([OM["discriminator"], *OM["compare_discriminators"]])
)
OM_RUNS = [f"joint_{d}" for d in OM_DISCRIMINATORS]
if OM["single"]:
    OM_RUNS += [f"single_{t}" for t in OM_TASKS]
OM_CODE = hw(
    "studies/onemodel.py",
    "studies/onemodel_labels.py",
    "studies/onemodel_sensory.py",
    "studies/phoc.py",
    "studies/__init__.py",
    "retrieval.py",
    "charsets.py",
    "engine.py",
    "models.py",
    "metrics.py",
    "data.py",
    "store.py",
    "logs.py",
)
# Task keys that change what a model learns; paper_row only changes the report, and
# hash only the joint runs (a single-task run has nothing to discriminate).
OM_TASK_TRAIN_KEYS = [
    "name",
    "dataset",
    "charset",
    "words",
    "kind",
    "hash",
    "scale_height",
]

ALL_TARGETS.append("reports/onemodel.csv")


rule onemodel_train:
    input:
        unpack(om_inputs),
        script=script_path("onemodel_train.py"),
        code=OM_CODE,
    output:
        eval="results/onemodel/{run}/seed{seed}/eval.json",
        metrics="results/onemodel/{run}/seed{seed}/metrics.csv",
    log:
        "logs/onemodel/{run}/seed{seed}.log",
    benchmark:
        "benchmarks/jobs/onemodel/{run}/seed{seed}.tsv"
    wildcard_constraints:
        run="|".join(OM_RUNS),
        seed=r"\d+",
    threads: OM["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=OM["mem_mb"],
        runtime=OM["runtime"],
    params:
        spec=om_spec,
    script:
        "../scripts/onemodel_train.py"


rule onemodel_report:
    input:
        evals=expand(
            "results/onemodel/{run}/seed{seed}/eval.json",
            run=OM_RUNS,
            seed=OM["seeds"],
        ),
        metrics=expand(
            "results/onemodel/{run}/seed{seed}/metrics.csv",
            run=OM_RUNS,
            seed=OM["seeds"],
        ),
        datasets=sorted(
            {
                f"data/processed/{spec['dataset']}/{name}"
                for spec in OM["tasks"]
                for name in ("images.npy", "meta.csv")
            }
        ),
        script=script_path("onemodel_report.py"),
        code=hw(
            "studies/onemodel.py",
            "studies/onemodel_labels.py",
            "studies/phoc.py",
            "report.py",
            "charsets.py",
            "store.py",
            "logs.py",
        ),
    output:
        table="reports/onemodel.csv",
        html=report(
            "reports/onemodel.html",
            caption="../report/onemodel/table.rst",
            category="onemodel",
        ),
        markdown="reports/onemodel.md",
        provenance="reports/onemodel.json",
        collisions=report(
            "reports/onemodel_collisions.csv",
            caption="../report/onemodel/collisions.rst",
            category="onemodel",
        ),
        figure=report(
            "reports/onemodel_loss.png",
            caption="../report/onemodel/loss.rst",
            category="onemodel",
        ),
    log:
        "logs/onemodel/report.log",
    benchmark:
        "benchmarks/jobs/onemodel/report.tsv"
    params:
        config=OM,
        discriminator=OM["discriminator"],
        runs=OM_RUNS,
        benchmarks=expand(
            "benchmarks/jobs/onemodel/{run}/seed{seed}.tsv",
            run=OM_RUNS,
            seed=OM["seeds"],
        ),
    script:
        "../scripts/onemodel_report.py"
