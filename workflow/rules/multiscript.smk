# The multi-script MTL study (docs/multiscript.md): reports/table4.csv.
#
# One training job per (group, model, seed): group "digits" trains Lat/Arab/Kan
# (one script each) and Base/Wloss/UW/New (30 classes); group "amharic" trains
# Base/Wloss/UW/New on 77 classes. Each job's params hold only what that job uses,
# so editing one model's hyper-parameter reruns that model's jobs and the report.


include: "functions/multiscript.smk"


MS = config["multiscript"]
# Models per group; hwbench.studies.multiscript.GROUPS is the reference (a test
# checks they agree). Kept literal here so a dry run does not import torch.
MS_MODELS = {
    "digits": ["lat", "arab", "kan", "base", "wloss", "uw", "new"],
    "amharic": ["base", "wloss", "uw", "new"],
}
MS_SCRIPTS = {"lat": ["latin"], "arab": ["arabic"], "kan": ["kannada"]}
MS_GROUP_SCRIPTS = {"digits": ["latin", "arabic", "kannada"], "amharic": ["amharic"]}
MS_CODE = hw(
    "studies/multiscript.py",
    "engine.py",
    "models.py",
    "data.py",
    "metrics.py",
    "store.py",
    "charsets.py",
    "logs.py",
)

ms_check_config()
ALL_TARGETS.append("reports/table4.csv")


rule multiscript_train:
    input:
        unpack(ms_data),
        script=script_path("multiscript_train.py"),
        code=MS_CODE,
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
        group="digits|amharic",
        model="lat|arab|kan|base|wloss|uw|new",
        seed=r"\d+",
    threads: MS["resources"]["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        mem_mb=MS["resources"]["mem_mb"],
        runtime=MS["resources"]["runtime"],
    params:
        run_dir=lambda wildcards, output: os.path.dirname(output.eval),
        sources=lambda wildcards: {s: MS["sources"][s] for s in ms_scripts(wildcards)},
        model=MS["model"],
        train=MS["train"],
        select=MS["select"],
        method=ms_method_params,
    script:
        "../scripts/multiscript_train.py"


rule multiscript_table4:
    input:
        evals=[f"{run}/eval.json" for run in ms_runs()],
        datasets=ms_datasets(),
        script=script_path("multiscript_report.py"),
        code=hw("studies/multiscript.py", "report.py", "store.py", "logs.py"),
    output:
        csv="reports/table4.csv",
        html=report(
            "reports/table4.html",
            caption="../report/multiscript/table4.rst",
            category="multiscript",
        ),
        md="reports/table4.md",
        json="reports/table4.json",
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
    params:
        config=MS,
        # wall time per job, for the provenance sidecar
        benchmarks=[
            run.replace("results/", "benchmarks/jobs/") + ".tsv" for run in ms_runs()
        ],
    script:
        "../scripts/multiscript_report.py"
