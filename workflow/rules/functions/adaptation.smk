# Input and parameter functions of workflow/rules/adaptation.smk (kept apart from the
# rules, as `snakemake --lint` asks).


def adapt_charsets(wildcards):
    return ADAPT["charsets"].get(wildcards.dataset)


def _adapt_job_benchmarks():
    steps = ["train", "features", "styles"]
    files = [
        f"benchmarks/jobs/adaptation/{d}/{s}.tsv" for d in ADAPT_DATASETS for s in steps
    ]
    return files + [
        f"benchmarks/jobs/adaptation/{d}/{w}/adapt.tsv" for d, w in ADAPT_RUNS
    ]
