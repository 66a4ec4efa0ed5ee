# The lifelong study (docs/lifelong.md): writers as tasks, basic vs EWC vs
# multi-task, ACC/BWT/FWT -> reports/lifelong.csv.
#
# One job per (method, task order, seed) trains the whole task sequence; the
# multi-task upper bound is one job per seed; the "curriculum" order comes from
# one job that scores every writer with a single-task model. Each job's params
# hold only what it uses: changing the EWC lambda reruns the EWC jobs and the
# report, nothing else; adding a seed or an order trains only those runs.


include: "functions/lifelong.smk"


LL = config.get("lifelong")
LL_CODE = hw(
    "studies/lifelong.py",
    "continual.py",
    "engine.py",
    "models.py",
    "data.py",
    "metrics.py",
    "store.py",
    "logs.py",
)
# Methods trained as a task sequence (the rest of lifelong.methods: multitask).
LL_SEQUENTIAL = ["basic", "ewc"]

if LL is not None:
    ALL_TARGETS.append("reports/lifelong.csv")


rule lifelong_curriculum:
    input:
        unpack(ll_data),
        script=script_path("lifelong_train.py"),
        code=LL_CODE,
    output:
        order="results/lifelong/curriculum/order.json",
    log:
        "logs/lifelong/curriculum.log",
    benchmark:
        "benchmarks/jobs/lifelong/curriculum.tsv"
    threads: LL["resources"]["threads"] if LL else 1
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=LL["resources"]["mem_mb"] if LL else 1000,
        runtime=LL["resources"]["runtime"] if LL else 60,
    params:
        cfg=lambda wildcards: ll_cfg("curriculum"),
    script:
        "../scripts/lifelong_train.py"


rule lifelong_sequence:
    input:
        unpack(ll_data),
        unpack(ll_order_input),
        script=script_path("lifelong_train.py"),
        code=LL_CODE,
    # Per-task metrics.csv and the resume state (state.pt) live beside these but
    # are not declared: Snakemake deletes declared outputs before a rerun.
    output:
        eval="results/lifelong/{method}/{order}/s{seed}/eval.json",
        R="results/lifelong/{method}/{order}/s{seed}/R.csv",
        curves="results/lifelong/{method}/{order}/s{seed}/curves.csv",
    log:
        "logs/lifelong/{method}/{order}/s{seed}.log",
    benchmark:
        "benchmarks/jobs/lifelong/{method}/{order}/s{seed}.tsv"
    wildcard_constraints:
        method="|".join(LL_SEQUENTIAL),
        order=r"[A-Za-z0-9]+(_[A-Za-z0-9]+)*",
        seed=r"\d+",
    threads: LL["resources"]["threads"] if LL else 1
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=LL["resources"]["mem_mb"] if LL else 1000,
        runtime=LL["resources"]["runtime"] if LL else 60,
    params:
        cfg=ll_sequence_cfg,
    script:
        "../scripts/lifelong_train.py"


rule lifelong_multitask:
    input:
        unpack(ll_data),
        script=script_path("lifelong_train.py"),
        code=LL_CODE,
    output:
        eval="results/lifelong/multitask/s{seed}/eval.json",
        curves="results/lifelong/multitask/s{seed}/curves.csv",
    log:
        "logs/lifelong/multitask/s{seed}.log",
    benchmark:
        "benchmarks/jobs/lifelong/multitask/s{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    threads: LL["resources"]["threads"] if LL else 1
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=LL["resources"]["mem_mb"] if LL else 1000,
        runtime=LL["resources"]["runtime"] if LL else 60,
    params:
        cfg=lambda wildcards: ll_cfg("multitask"),
    script:
        "../scripts/lifelong_train.py"


rule lifelong_report:
    input:
        evals=lambda wildcards: [f"{run}/eval.json" for run in ll_runs()],
        curves=lambda wildcards: [f"{run}/curves.csv" for run in ll_runs()],
        matrices=lambda wildcards: [
            f"{run}/R.csv" for run in ll_runs() if "/multitask/" not in run
        ],
        dataset=lambda wildcards: [
            ll_data(wildcards)["images"],
            ll_data(wildcards)["meta"],
        ],
        script=script_path("lifelong_report.py"),
        code=hw(
            "studies/lifelong.py", "continual.py", "report.py", "store.py", "logs.py"
        ),
    output:
        table="reports/lifelong.csv",
        html=report(
            "reports/lifelong.html",
            caption="../report/lifelong/table.rst",
            category="lifelong",
        ),
        md="reports/lifelong.md",
        json="reports/lifelong.json",
        curves=report(
            "reports/lifelong_curves.png",
            caption="../report/lifelong/curves.rst",
            category="lifelong",
        ),
        matrices=report(
            "reports/lifelong_R.png",
            caption="../report/lifelong/matrices.rst",
            category="lifelong",
        ),
    log:
        "logs/lifelong/report.log",
    benchmark:
        "benchmarks/jobs/lifelong/report.tsv"
    params:
        config=LL,
        model=LL["model"]["name"] if LL else None,
        benchmarks=lambda wildcards: ll_benchmarks(),
        repo=workflow.basedir,
    script:
        "../scripts/lifelong_report.py"
