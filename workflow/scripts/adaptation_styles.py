"""Adapter: rule adaptation_styles (workflow/rules/adaptation.smk)."""

import numpy as np
from threadpoolctl import threadpool_limits

from hwbench.logs import job_log
from hwbench.store import atomic_path, write_csv
from hwbench.studies.adaptation import loop as ad

# One BLAS/OpenMP thread: the parallelism is processes (threads spin on a busy machine).
with job_log(snakemake.log[0]) as log, threadpool_limits(1):
    p = snakemake.params
    z = np.load(snakemake.input.features)
    # Writing styles from the images the base CNN was trained and validated on.
    features = np.concatenate([z["train_features"], z["val_features"]])
    labels = np.concatenate([z["train_label"], z["val_label"]])
    styles = ad.fit_styles(
        features, labels, seed=p.seed, n_init=p.n_init, workers=snakemake.threads
    )
    log.info("%d writing styles for %d classes", len(styles.labels), len(np.unique(labels)))
    with atomic_path(snakemake.output.styles) as tmp:
        np.savez(tmp, centroids=styles.centroids, labels=styles.labels)
    # Section 3.2's check, scored on the application images the styles will serve.
    quality = ad.style_quality(styles, z["app_features"], z["app_label"], p.quality_ks)
    quality["dataset"] = snakemake.wildcards.dataset
    quality["centroids"] = len(styles.labels)
    quality["cnn_app_acc"] = float((z["app_pred"] == z["app_label"]).mean())
    write_csv(snakemake.output.quality, quality)
    log.info("KNN on the centroids:\n%s", quality.to_string(index=False))
