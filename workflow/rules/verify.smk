# `snakemake --cores 1 verify`: rehash the stores of the config's `datasets` and compare
# each with the digest.json recorded when it was written (hwbench/verify.py) ->
# reports/verify.csv. A store changed on disk since (damaged pixels under an intact
# header, a truncated or replaced file) fails the job, naming the store and the command
# that rebuilds it. A rewritten store is newer than the table, so verify reruns.
VERIFY_STORES = [f"data/processed/{d}" for d in config["datasets"]]


rule verify:
    input:
        images=[f"{s}/images.npy" for s in VERIFY_STORES],
        digests=[f"{s}/digest.json" for s in VERIFY_STORES],
        meta=[f"{s}/meta.csv" for s in VERIFY_STORES],
        script=script_path("verify.py"),
        code=code("verify"),
    output:
        "reports/verify.csv",
    log:
        "logs/verify.log",
    params:
        stores=VERIFY_STORES,
    script:
        "../scripts/verify.py"
