"""Adapter: rule adaptation_adapt (workflow/rules/adaptation.smk)."""

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from hwbench.logs import job_log
from hwbench.store import read_split, write_csv
from hwbench.studies.adaptation import loop as ad

# One BLAS/OpenMP thread: the parallelism is processes (threads spin on a busy machine).
with job_log(snakemake.log[0]) as log, threadpool_limits(1):
    p = snakemake.params
    z = np.load(snakemake.input.features)
    s = np.load(snakemake.input.styles)
    styles = ad.Styles(s["centroids"], s["labels"])
    app = ad.AppSet(
        index=z["app_index"],
        features=z["app_features"],
        pred=z["app_pred"],
        label=z["app_label"],
        writer=z["app_writer"],
        style=ad.nearest_style(z["app_features"], z["app_label"], styles),
    )
    split = read_split(snakemake.input.split)
    # Only the classes the study keeps (charsets) are in the features.
    kept = np.isin(split["index"].to_numpy(), app.index)
    log.info("%d of %d adaptation split rows are of the kept classes", kept.sum(), len(kept))
    split = split[kept]
    records = ad.run_adaptation(
        app,
        styles.centroids,
        split,
        num_classes=len(z["classes"]),
        ks=p.knn_ks,
        weights=snakemake.wildcards.weights,
        seed=p.seed,
        workers=p.workers or snakemake.threads,
        progress=lambda it, total: tqdm(it, total=total, desc="writers", mininterval=30),
    )
    scores = ad.resample_scores(records, p.knn_ks)
    diag = ad.resample_diagnostics(records, p.knn_ks)
    scores = scores.merge(diag, on="resample")
    write_csv(snakemake.output.predictions, records)
    write_csv(snakemake.output.scores, scores)
    log.info("per resample:\n%s", scores.to_string(index=False))
