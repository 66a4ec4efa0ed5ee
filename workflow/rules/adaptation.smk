# The writer-adaptation study (docs/adaptation.md): writer split -> base CNN (engine)
# -> penultimate features -> k-means writing styles -> per-writer online KNN/Beta loop,
# one job per KNN weighting -> reports/adaptation.csv. The runs, inputs and params come
# from hwbench/studies/adaptation/plan.py.
from hwbench.studies.adaptation import plan as ad_plan

AD = config["adaptation"]
AD_RES = AD["resources"]

ALL_TARGETS.extend(ad_plan.targets(AD))


rule adaptation_train:
    input:
        **ad_plan.data_inputs("{dataset}"),
        script=script_path("adaptation_train.py"),
        code=code("studies.adaptation.job"),
    output:
        model="results/adaptation/{dataset}/base/model.pt",
        metrics="results/adaptation/{dataset}/base/metrics.csv",
        eval="results/adaptation/{dataset}/base/eval.json",
    log:
        "logs/adaptation/{dataset}/train.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/train.tsv"
    wildcard_constraints:
        dataset=ad_plan.dataset_pattern(),
    threads: AD_RES["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=AD_RES["mem_mb"],
        runtime=AD_RES["runtime"],
    params:
        charsets=lambda w: ad_plan.charsets(AD, w.dataset),
        model=AD["model"],
        train=lambda w: ad_plan.train_settings(AD, w.dataset),
        seed=AD["seed"],
    script:
        "../scripts/adaptation_train.py"


rule adaptation_features:
    input:
        **ad_plan.data_inputs("{dataset}"),
        model="results/adaptation/{dataset}/base/model.pt",
        eval="results/adaptation/{dataset}/base/eval.json",
        script=script_path("adaptation_features.py"),
        code=code("studies.adaptation.job"),
    output:
        "results/adaptation/{dataset}/features.npz",
    log:
        "logs/adaptation/{dataset}/features.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/features.tsv"
    wildcard_constraints:
        dataset=ad_plan.dataset_pattern(),
    threads: AD_RES["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=AD_RES["mem_mb"],
        runtime=AD_RES["runtime"],
    params:
        charsets=lambda w: ad_plan.charsets(AD, w.dataset),
        model=AD["model"],
    script:
        "../scripts/adaptation_features.py"


rule adaptation_styles:
    input:
        features="results/adaptation/{dataset}/features.npz",
        script=script_path("adaptation_styles.py"),
        code=code("studies.adaptation.loop"),
    output:
        styles="results/adaptation/{dataset}/styles.npz",
        quality="results/adaptation/{dataset}/style_quality.csv",
    log:
        "logs/adaptation/{dataset}/styles.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/styles.tsv"
    wildcard_constraints:
        dataset=ad_plan.dataset_pattern(),
    threads: AD_RES["threads"]
    resources:
        mem_mb=AD_RES["mem_mb"],
        runtime=AD_RES["runtime"],
    params:
        n_init=AD["n_init"],
        seed=AD["seed"],
        quality_ks=AD["quality_ks"],
    script:
        "../scripts/adaptation_styles.py"


rule adaptation_adapt:
    input:
        features="results/adaptation/{dataset}/features.npz",
        styles="results/adaptation/{dataset}/styles.npz",
        split="data/splits/{dataset}/adaptation.csv",
        script=script_path("adaptation_adapt.py"),
        code=code("studies.adaptation.loop"),
    output:
        predictions="results/adaptation/{dataset}/{weights}/predictions.csv",
        scores="results/adaptation/{dataset}/{weights}/scores.csv",
    log:
        "logs/adaptation/{dataset}/{weights}/adapt.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/{weights}/adapt.tsv"
    wildcard_constraints:
        dataset=ad_plan.dataset_pattern(),
        weights=ad_plan.weights_pattern(),
    threads: AD_RES["threads"]
    resources:
        mem_mb=AD_RES["mem_mb"],
        runtime=AD_RES["runtime"],
    params:
        knn_ks=AD["knn_ks"],
        seed=AD["seed"],
        workers=AD["workers"],
    script:
        "../scripts/adaptation_adapt.py"


rule adaptation_report:
    input:
        **ad_plan.report_inputs(AD),
        script=script_path("adaptation_report.py"),
        code=code("studies.adaptation.report"),
    output:
        **table_outputs("adaptation", "adaptation", "../report/adaptation/table.rst"),
        styles=report(
            "reports/adaptation_styles.csv",
            caption="../report/adaptation/styles.rst",
            category="adaptation",
        ),
        diagnostics=report(
            "reports/adaptation_diagnostics.csv",
            caption="../report/adaptation/diagnostics.rst",
            category="adaptation",
        ),
        details="reports/adaptation_details.md",
        figure=report(
            "reports/adaptation_writers.png",
            caption="../report/adaptation/writers.rst",
            category="adaptation",
        ),
    log:
        "logs/adaptation/report.log",
    benchmark:
        "benchmarks/jobs/adaptation/report.tsv"
    params:
        runs=ad_plan.runs(AD),
        datasets=ad_plan.datasets(AD),
        papers={d: AD["paper"].get(d) for d in ad_plan.datasets(AD)},
        knn_ks=AD["knn_ks"],
        config=AD,
        splits=config["splits"],
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/adaptation_report.py"


rule adaptation_base_table:
    input:
        evals=ad_plan.report_inputs(AD)["evals"],
        script=script_path("adaptation_base_table.py"),
        code=code("studies.adaptation.report"),
    output:
        **table_outputs(
            "adaptation_base", "adaptation", "../report/adaptation/base.rst"
        ),
    log:
        "logs/adaptation/base_table.log",
    params:
        datasets=ad_plan.datasets(AD),
        papers={d: AD["paper"].get(d) for d in ad_plan.datasets(AD)},
        config=ad_plan.base_table_config(AD),
        repo=workflow.basedir,
        data_note=_dsrules.data_note(config),
    script:
        "../scripts/adaptation_base_table.py"
