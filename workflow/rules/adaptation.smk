# The writer-adaptation study (docs/adaptation.md, papers/adaptation.md):
# writer split -> base CNN (engine) -> penultimate features -> k-means writing styles
# -> per-writer online KNN/Beta loop, one job per KNN weighting -> reports/adaptation.csv.


include: "functions/adaptation.smk"


ADAPT = config.get("adaptation", {})
ADAPT_DATASETS = list(ADAPT.get("datasets", []))
ADAPT_RUNS = [(d, w) for d in ADAPT_DATASETS for w in ADAPT.get("knn_weights", [])]
ADAPT_BASE_CODE = hw(
    "studies/adaptation_base.py",
    "engine.py",
    "models.py",
    "data.py",
    "metrics.py",
    "charsets.py",
    "store.py",
    "logs.py",
)
ADAPT_CODE = hw("studies/adaptation.py", "store.py", "logs.py")


rule adaptation_train:
    input:
        images="data/processed/{dataset}/images.npy",
        meta="data/processed/{dataset}/meta.csv",
        split="data/splits/{dataset}/writer.csv",
        script=script_path("adaptation_train.py"),
        code=ADAPT_BASE_CODE,
    output:
        model="results/adaptation/{dataset}/base/model.pt",
        metrics="results/adaptation/{dataset}/base/metrics.csv",
        eval="results/adaptation/{dataset}/base/eval.json",
    log:
        "logs/adaptation/{dataset}/train.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/train.tsv"
    threads: 4
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=8000,
        runtime=240,
    params:
        charsets=adapt_charsets,
        model=ADAPT.get("model"),
        train=ADAPT.get("train"),
        seed=ADAPT.get("seed"),
    script:
        "../scripts/adaptation_train.py"


rule adaptation_features:
    input:
        images="data/processed/{dataset}/images.npy",
        meta="data/processed/{dataset}/meta.csv",
        split="data/splits/{dataset}/writer.csv",
        model="results/adaptation/{dataset}/base/model.pt",
        eval="results/adaptation/{dataset}/base/eval.json",
        script=script_path("adaptation_features.py"),
        code=ADAPT_BASE_CODE,
    output:
        "results/adaptation/{dataset}/features.npz",
    log:
        "logs/adaptation/{dataset}/features.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/features.tsv"
    threads: 4
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=8000,
        runtime=60,
    params:
        charsets=adapt_charsets,
        model=ADAPT.get("model"),
    script:
        "../scripts/adaptation_features.py"


rule adaptation_styles:
    input:
        features="results/adaptation/{dataset}/features.npz",
        script=script_path("adaptation_styles.py"),
        code=ADAPT_CODE,
    output:
        styles="results/adaptation/{dataset}/styles.npz",
        quality="results/adaptation/{dataset}/style_quality.csv",
    log:
        "logs/adaptation/{dataset}/styles.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/styles.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        n_init=ADAPT.get("n_init"),
        seed=ADAPT.get("seed"),
        quality_ks=ADAPT.get("quality_ks"),
    script:
        "../scripts/adaptation_styles.py"


rule adaptation_adapt:
    input:
        features="results/adaptation/{dataset}/features.npz",
        styles="results/adaptation/{dataset}/styles.npz",
        split="data/splits/{dataset}/adaptation.csv",
        script=script_path("adaptation_adapt.py"),
        code=ADAPT_CODE,
    output:
        predictions="results/adaptation/{dataset}/{weights}/predictions.csv",
        scores="results/adaptation/{dataset}/{weights}/scores.csv",
    log:
        "logs/adaptation/{dataset}/{weights}/adapt.log",
    benchmark:
        "benchmarks/jobs/adaptation/{dataset}/{weights}/adapt.tsv"
    wildcard_constraints:
        weights="uniform|distance",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        knn_ks=ADAPT.get("knn_ks"),
        seed=ADAPT.get("seed"),
        workers=ADAPT.get("workers"),
    script:
        "../scripts/adaptation_adapt.py"


rule adaptation_report:
    input:
        scores=[f"results/adaptation/{d}/{w}/scores.csv" for d, w in ADAPT_RUNS],
        predictions=[
            f"results/adaptation/{d}/{w}/predictions.csv" for d, w in ADAPT_RUNS
        ],
        quality=[f"results/adaptation/{d}/style_quality.csv" for d in ADAPT_DATASETS],
        evals=[f"results/adaptation/{d}/base/eval.json" for d in ADAPT_DATASETS],
        data=[
            f"data/processed/{d}/{f}"
            for d in ADAPT_DATASETS
            for f in ("images.npy", "meta.csv")
        ],
        benchmarks=_adapt_job_benchmarks(),
        script=script_path("adaptation_report.py"),
        code=hw("studies/adaptation.py", "report.py", "store.py", "logs.py"),
    output:
        table="reports/adaptation.csv",
        html=report(
            "reports/adaptation.html",
            caption="../report/adaptation/table.rst",
            category="adaptation",
        ),
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
        runs=ADAPT_RUNS,
        datasets=ADAPT_DATASETS,
        papers={d: ADAPT.get("paper", {}).get(d) for d in ADAPT_DATASETS},
        knn_ks=ADAPT.get("knn_ks"),
        config=ADAPT,
        splits=config.get("splits"),
    script:
        "../scripts/adaptation_report.py"


if ADAPT_DATASETS:
    ALL_TARGETS.append("reports/adaptation.csv")
