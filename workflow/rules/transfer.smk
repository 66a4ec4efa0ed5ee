# The transfer study (docs/transfer.md): reports/transfer.csv and its figures.
# hwbench/studies/transfer/plan.py holds the runs, each job's inputs and params.
from hwbench.studies.transfer import plan as tr_plan
from hwbench.studies.transfer import spec as tr_spec

TR = config["transfer"]
ALL_TARGETS.extend(tr_plan.targets())


# model.pt and eval.json are written when the run has finished; metrics.csv and
# checkpoint.pt beside them are not declared (Snakemake deletes declared outputs
# before a rerun, and the engine resumes an interrupted run from them).
rule transfer_source:
    input:
        unpack(lambda wildcards: tr_plan.task_inputs(TR, wildcards.task)),
        script=script_path("transfer_train.py"),
        code=code("studies.transfer.job"),
    output:
        model=f"{tr_plan.SOURCE_RUN}/model.pt",
        eval=f"{tr_plan.SOURCE_RUN}/eval.json",
    log:
        tr_plan.log_file(tr_plan.SOURCE_RUN),
    benchmark:
        tr_plan.benchmark_file(tr_plan.SOURCE_RUN)
    wildcard_constraints:
        task=tr_plan.one_of(TR["tasks"]),
        seed=r"\d+",
    threads: TR["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=TR["resources"]["mem_mb"],
        runtime=TR["resources"]["runtime"],
    params:
        job=lambda wildcards: tr_plan.source_params(TR, wildcards.task),
    script:
        "../scripts/transfer_train.py"


rule transfer_train:
    input:
        unpack(
            lambda wildcards: tr_plan.train_inputs(
                TR, wildcards.set, wildcards.mode, wildcards.seed
            )
        ),
        script=script_path("transfer_train.py"),
        code=code("studies.transfer.job"),
    output:
        eval=f"{tr_plan.SET_RUN}/eval.json",
    log:
        tr_plan.log_file(tr_plan.SET_RUN),
    benchmark:
        tr_plan.benchmark_file(tr_plan.SET_RUN)
    wildcard_constraints:
        set=tr_plan.one_of(TR["sets"]),
        mode=tr_plan.one_of(tr_spec.MODES),
        seed=r"\d+",
    threads: TR["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=TR["resources"]["mem_mb"],
        runtime=TR["resources"]["runtime"],
    params:
        job=lambda wildcards: tr_plan.train_params(TR, wildcards.set, wildcards.mode),
    script:
        "../scripts/transfer_train.py"


rule transfer_report:
    input:
        evals=tr_plan.report_evals(TR),
        data=tr_plan.report_data(TR),
        script=script_path("transfer_report.py"),
        code=code("studies.transfer.report"),
    output:
        **table_outputs("transfer", "transfer", "../report/transfer/table.rst"),
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
        benchmarks=tr_plan.report_benchmarks(TR),
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/transfer_report.py"
