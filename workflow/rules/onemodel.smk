# The OneModel study (docs/onemodel.md): one network with one PHOC output layer on
# every task at once (joint_<discriminator>) versus one model per task
# (single_<task>), one job per run kind and seed, then reports/onemodel.csv.
# Runs, inputs and params come from hwbench/studies/onemodel/plan.py.
from hwbench.studies.onemodel import plan as om_plan

OM = om_plan.checked(config["onemodel"])

ALL_TARGETS.extend(om_plan.TARGETS)


rule onemodel_train:
    input:
        unpack(
            lambda w: om_plan.train_inputs(
                OM,
                w.run,
                {*SYNTH_DATASETS, *_datasets.ARRAY_DATASETS, *IMAGE_DATASETS},
            )
        ),
        script=script_path("onemodel_train.py"),
        code=code("studies.onemodel.job"),
    output:
        eval=om_plan.EVAL,
        metrics=om_plan.METRICS,
    log:
        "logs/onemodel/{run}/seed{seed}.log",
    benchmark:
        om_plan.BENCHMARK
    wildcard_constraints:
        run="|".join(om_plan.runs(OM)),
        seed=r"\d+",
    threads: OM["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=OM["resources"]["mem_mb"],
        runtime=OM["resources"]["runtime"],
    params:
        spec=lambda w: om_plan.train_params(OM, w.run, int(w.seed)),
    script:
        "../scripts/onemodel_train.py"


rule onemodel_report:
    input:
        **om_plan.report_inputs(OM),
        script=script_path("onemodel_report.py"),
        code=code("studies.onemodel.report"),
    output:
        **table_outputs(om_plan.TABLE, "onemodel", "../report/onemodel/table.rst"),
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
        fig5=report(
            "reports/onemodel_fig5.png",
            caption="../report/onemodel/fig5.rst",
            category="onemodel",
        ),
    log:
        "logs/onemodel/report.log",
    benchmark:
        "benchmarks/jobs/onemodel/report.tsv"
    params:
        config=om_plan.report_config(OM),
        benchmarks=om_plan.run_files(OM, om_plan.BENCHMARK),
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/onemodel_report.py"
