# EMNIST-style preprocessing of raw image datasets (docs/preprocess.md).
#
# data/raw/<dataset>/manifest.csv (+ its images) -> data/processed/<dataset>/.
# Only image datasets match: the synthetic ones (config["synth"] maps their names
# to generator parameters) and those the data rule files add to IMAGE_DATASETS
# before this file is included. Datasets whose readers write
# data/processed/<dataset>/ directly (MNIST-like IDX) are not listed, so no two
# rules can make the same file.
import re

PREPROCESS_DATASETS = sorted(
    set(IMAGE_DATASETS)
    | {name for name, p in config.get("synth", {}).items() if isinstance(p, dict)}
)


rule preprocess:
    input:
        manifest="data/raw/{dataset}/manifest.csv",
        script=script_path("preprocess.py"),
        code=hw("preprocess.py", "store.py", "logs.py"),
    output:
        images="data/processed/{dataset}/images.npy",
        meta="data/processed/{dataset}/meta.csv",
    log:
        "logs/preprocess/{dataset}.log",
    benchmark:
        "benchmarks/jobs/preprocess/{dataset}.tsv"
    wildcard_constraints:
        # "(?!)" matches nothing: no image dataset configured
        dataset="|".join(re.escape(n) for n in PREPROCESS_DATASETS) or "(?!)",
    threads: config["resources"]["preprocess"]["threads"]
    resources:
        mem_mb=config["resources"]["preprocess"]["mem_mb"],
        runtime=config["resources"]["preprocess"]["runtime"],
    params:
        # what decides the images; workers and on_error (read by the script from
        # the config) change no image, so changing them reruns nothing
        preprocess={k: config["preprocess"][k] for k in ("sigma", "border", "rescale")},
    script:
        "../scripts/preprocess.py"
