# The lifelong study (docs/lifelong.md): writers as tasks, basic vs EWC vs
# multi-task, ACC/BWT/FWT -> reports/lifelong.csv. Runs, inputs and params come
# from hwbench/studies/lifelong/plan.py.
from hwbench.studies.lifelong import plan as ll_plan
from hwbench.studies.lifelong import spec as ll_spec

LL = config["lifelong"]
ALL_TARGETS.append(ll_plan.TABLE)


rule lifelong_curriculum:
    input:
        unpack(lambda wildcards: ll_plan.data_inputs(LL)),
        script=script_path("lifelong_train.py"),
        code=code("studies.lifelong.job"),
    output:
        order=ll_plan.CURRICULUM_ORDER,
    log:
        "logs/lifelong/curriculum.log",
    benchmark:
        ll_plan.CURRICULUM_BENCHMARK
    threads: LL["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=LL["resources"]["mem_mb"],
        runtime=LL["resources"]["runtime"],
    params:
        cfg=ll_plan.job_cfg(LL, "curriculum"),
    script:
        "../scripts/lifelong_train.py"


rule lifelong_sequence:
    input:
        unpack(lambda wildcards: ll_plan.sequence_inputs(LL, wildcards.order)),
        script=script_path("lifelong_train.py"),
        code=code("studies.lifelong.job"),
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
        method="|".join(ll_spec.SEQUENTIAL_METHODS),
        order=ll_spec.ORDER_PATTERN,
        seed=r"\d+",
    threads: LL["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=LL["resources"]["mem_mb"],
        runtime=LL["resources"]["runtime"],
    params:
        cfg=lambda wildcards: ll_plan.sequence_cfg(LL, wildcards.method),
    script:
        "../scripts/lifelong_train.py"


rule lifelong_multitask:
    input:
        unpack(lambda wildcards: ll_plan.data_inputs(LL)),
        script=script_path("lifelong_train.py"),
        code=code("studies.lifelong.job"),
    output:
        eval="results/lifelong/multitask/s{seed}/eval.json",
        curves="results/lifelong/multitask/s{seed}/curves.csv",
    log:
        "logs/lifelong/multitask/s{seed}.log",
    benchmark:
        "benchmarks/jobs/lifelong/multitask/s{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    threads: LL["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=LL["resources"]["mem_mb"],
        runtime=LL["resources"]["runtime"],
    params:
        cfg=ll_plan.job_cfg(LL, "multitask"),
    script:
        "../scripts/lifelong_train.py"


rule lifelong_report:
    input:
        unpack(lambda wildcards: ll_plan.report_inputs(LL)),
        script=script_path("lifelong_report.py"),
        code=code("studies.lifelong.report"),
    output:
        **table_outputs("lifelong", "lifelong", "../report/lifelong/table.rst"),
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
    threads: LL["resources"]["threads"]
    resources:
        mem_mb=LL["resources"]["mem_mb"],
        runtime=LL["resources"]["runtime"],
    params:
        config=LL,
        model=LL["model"]["name"],
        benchmark_files=ll_plan.benchmarks(LL),
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/lifelong_report.py"
