# The multi-script MTL study (docs/multiscript.md): reports/table4.csv.
# What runs, and each job's inputs and params: hwbench/studies/multiscript/plan.py.
from hwbench.studies.multiscript import plan as ms_plan

MS = config["multiscript"]
ALL_TARGETS.append(ms_plan.TABLE)


rule multiscript_train:
    input:
        unpack(lambda w: ms_plan.train_inputs(MS, w.group, w.model)),
        script=script_path("multiscript_train.py"),
        code=code("studies.multiscript.job"),
    # metrics.csv and the checkpoint live beside eval.json but are not declared:
    # Snakemake deletes declared outputs before a rerun, and the engine resumes
    # from both after an interrupted job.
    output:
        eval="results/multiscript/{group}/{model}/seed{seed}/eval.json",
    log:
        "logs/multiscript/{group}/{model}/seed{seed}.log",
    benchmark:
        "benchmarks/jobs/multiscript/{group}/{model}/seed{seed}.tsv"
    wildcard_constraints:
        group=ms_plan.GROUP_PATTERN,
        model=ms_plan.MODEL_PATTERN,
        seed=ms_plan.SEED_PATTERN,
    threads: MS["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=MS["resources"]["mem_mb"],
        runtime=MS["resources"]["runtime"],
    params:
        sources=lambda w: ms_plan.sources(MS, w.group, w.model),
        model=MS["model"],
        train=MS["train"],
        select=MS["select"],
        method=lambda w: ms_plan.method_params(MS, w.group, w.model),
    script:
        "../scripts/multiscript_train.py"


rule multiscript_table4:
    input:
        evals=ms_plan.evals(MS),
        datasets=ms_plan.datasets(MS),
        script=script_path("multiscript_report.py"),
        code=code("studies.multiscript.report"),
    output:
        **table_outputs("table4", "multiscript", "../report/multiscript/table4.rst"),
        curves=report(
            "reports/table4_curves.png",
            caption="../report/multiscript/curves.rst",
            category="multiscript",
        ),
        new_losses=report(
            "reports/table4_new_losses.png",
            caption="../report/multiscript/new_losses.rst",
            category="multiscript",
        ),
    log:
        "logs/multiscript/table4.log",
    benchmark:
        "benchmarks/jobs/multiscript/table4.tsv"
    threads: MS["resources"]["threads"]
    resources:
        mem_mb=MS["resources"]["mem_mb"],
        runtime=MS["resources"]["runtime"],
    params:
        config=MS,
        # wall time per job, for the provenance sidecar
        benchmarks=ms_plan.benchmarks(MS),
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/multiscript_report.py"
