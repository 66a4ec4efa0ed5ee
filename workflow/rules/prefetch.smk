# Downloads on the submit host (docs/cluster.md, "Offline compute nodes").
#
# `snakemake prefetch` fetches and verifies every dataset file the config reads and
# the ImageNet weights of every `pretrained: imagenet` model, so jobs on compute
# nodes never download. fetch_raw (download.smk) and fetch_weights are local rules
# (Snakefile), so even without prefetch no download runs on a compute node.
#
# The weights go to torch's cache, <torch_home>/hub/checkpoints/, where torchvision
# looks for them. Config `torch_home` sets TORCH_HOME for every job (on SLURM the
# job re-reads this Snakefile on the node, so it sees the same path: put it on the
# shared filesystem). Config `offline` sets HWBENCH_OFFLINE=1: a missing file then
# fails at once, naming itself and `snakemake prefetch`, instead of a download try.
from hwbench import weights as _weights

# set here, so the jobs (scripts inherit this process's environment) see them
os.environ.update(_weights.job_environment(config))

TORCH_HOME = _weights.torch_home(config.get("torch_home"))
# ImageNet weight files the config needs: file name -> model name
PRETRAINED = {
    os.path.basename(_weights.imagenet_url(name)): name
    for name in _weights.imagenet_models(config)
}


rule fetch_weights:
    output:
        str(TORCH_HOME / "hub/checkpoints/{file}"),
    log:
        "logs/fetch_weights/{file}.log",
    wildcard_constraints:
        file="|".join(re.escape(f) for f in PRETRAINED) or "(?!)",
    params:
        url=lambda w: _weights.imagenet_url(PRETRAINED[w.file]),
    script:
        "../scripts/fetch_weights.py"


rule prefetch:
    input:
        records=[
            record
            for dataset in _dsrules.prefetch_datasets(config)
            for record in _dsrules.record_targets(config, dataset)
        ],
        weights=[str(TORCH_HOME / "hub/checkpoints" / f) for f in PRETRAINED],
