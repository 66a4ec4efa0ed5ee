# Split schemes (docs/splits.md): data/processed/<dataset>/meta.csv ->
# data/splits/<dataset>/<scheme>.csv for scheme in stratified | writer | adaptation.

# The config keys each scheme reads (hwbench.splits.SCHEME_KEYS): a job gets only its
# scheme's keys, so changing another key reruns nothing.
from hwbench.splits import SCHEME_KEYS as SPLIT_SCHEME_PARAMS


rule splits:
    input:
        meta="data/processed/{dataset}/meta.csv",
        script=script_path("splits.py"),
        code=hw("splits.py", "store.py", "logs.py"),
    output:
        "data/splits/{dataset}/{scheme}.csv",
    log:
        "logs/splits/{dataset}/{scheme}.log",
    benchmark:
        "benchmarks/jobs/splits/{dataset}/{scheme}.tsv"
    wildcard_constraints:
        scheme="|".join(SPLIT_SCHEME_PARAMS),
    threads: config["resources"]["splits"]["threads"]
    resources:
        mem_mb=config["resources"]["splits"]["mem_mb"],
        runtime=config["resources"]["splits"]["runtime"],
    params:
        split=lambda w: {k: config["splits"][k] for k in SPLIT_SCHEME_PARAMS[w.scheme]},
    script:
        "../scripts/splits.py"


# every dataset's schemes: config splits.schemes.<dataset>, else .default
ALL_TARGETS.extend(
    f"data/splits/{dataset}/{scheme}.csv"
    for dataset in config["datasets"]
    for scheme in config["splits"]["schemes"].get(
        dataset, config["splits"]["schemes"]["default"]
    )
)
