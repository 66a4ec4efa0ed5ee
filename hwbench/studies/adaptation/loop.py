"""Writer adaptation of a frozen CNN (Čugurović, Nikolić, Novaković: "Learn the Way We Write"):
the writing styles and the per-writer online loop (numpy; no torch).

The base CNN and its features are :mod:`hwbench.studies.adaptation.job`, the table and
figure :mod:`hwbench.studies.adaptation.report`.

1. Writing styles: k-means per class on the base CNN's 256-unit penultimate features of
   the train + val images, ``k = int(min(30, 1 + max(n / 1000, 4)))`` clusters for a
   class of ``n`` images (:func:`n_styles`, :func:`fit_styles`); their quality is checked
   with KNN classifiers trained on the centroids (:func:`style_quality`).
2. Per application writer and resample (:func:`adapt_writer`), the writer's images are
   processed one at a time, adaptation images first, then test images. For each image:

   - predict: the CNN's prediction ``p``; KNNs (k in 2, 4, 6, 8, 10) trained on the
     writing-history entries whose key starts with ``p`` (no prediction with fewer than
     ``k`` entries); the most confident of them wins, the CNN on ties (then smaller k).
   - update, in this order: the history entry ``(p, true label)`` takes in the true
     class's centroid nearest to the image's features (a running mean); each classifier
     that predicted updates its Beta(1, 1) confidence for the label it predicted (alpha
     +1 when right, beta +1 when wrong; confidence alpha / (alpha + beta)); the KNNs
     see the new history at the next image.

   Adaptation images only update; test images are scored as well. This is the paper's
   real-use scenario (the writer corrects a wrong character, so the label is known
   after the prediction) applied to the whole sequence, so the confidences are never
   measured on images the history already contains.
3. Scores per resample (:func:`resample_scores`): base accuracy, improved accuracy, the
   upper bound (the CNN or some KNN right) and writers improved / tied / worse.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from hwbench.studies.adaptation.spec import KNN_KS, KNN_WEIGHTS, QUALITY_KS

# --------------------------------------------------------------------------- writing styles


def _fork_context():
    """fork where there is one: workers then need no re-import of the caller's __main__
    (under spawn a Snakemake script would run again in every worker)."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def n_styles(n: int) -> int:
    """Clusters for a class of ``n`` images: eq. (1), ``int(min(30, 1 + max(n/1000, 4)))``."""
    return int(min(30, 1 + max(n / 1000, 4)))


@dataclass(frozen=True)
class Styles:
    """Writing styles: k-means centroids and the class each belongs to."""

    centroids: np.ndarray  # float32, (K, D)
    labels: np.ndarray  # int64, (K,)

    def of_class(self, label: int) -> np.ndarray:
        """Row ids of ``label``'s centroids."""
        return np.flatnonzero(self.labels == label)


def _fit_class(args: tuple) -> np.ndarray:
    x, k, seed, n_init = args
    # One thread per fit: OpenMP threads spin-wait on a busy machine (40x slower seen on
    # 2 shared cores); classes run in parallel processes instead.
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return km.cluster_centers_.astype(np.float32)


def fit_styles(
    features: np.ndarray, labels: np.ndarray, seed: int = 0, n_init: int = 10, workers: int = 1
) -> Styles:
    """K-means per class (Euclidean, scikit-learn, ``n_init`` restarts), k from :func:`n_styles`.

    A class with fewer images than its k gets one centroid per image (k-means cannot
    make more clusters than points; this happens only on tiny demo data). Classes are
    clustered in ``workers`` processes; the result does not depend on their number.
    """
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    tasks = []
    for label in classes:
        x = features[labels == label]
        tasks.append((x, min(n_styles(len(x)), len(x)), seed, n_init))
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(min(workers, len(tasks)), _fork_context()) as pool:
            cents = list(pool.map(_fit_class, tasks))
    else:
        cents = [_fit_class(t) for t in tasks]
    owners = [
        np.full(len(c), label, dtype=np.int64) for c, label in zip(cents, classes, strict=True)
    ]
    return Styles(np.concatenate(cents), np.concatenate(owners))


def style_quality(
    styles: Styles, features: np.ndarray, labels: np.ndarray, ks: Sequence[int] = QUALITY_KS
) -> pd.DataFrame:
    """Section 3.2's check: accuracy of KNNs trained on the centroids, one row per k.

    ``features``/``labels`` are the images scored (the application set in the study). A k
    larger than the number of centroids is skipped.
    """
    rows = []
    for k in ks:
        if k > len(styles.labels):
            continue
        knn = KNeighborsClassifier(n_neighbors=k, algorithm="brute")
        knn.fit(styles.centroids, styles.labels)
        acc = float((knn.predict(np.asarray(features, np.float32)) == labels).mean())
        rows.append({"k": k, "accuracy": acc})
    return pd.DataFrame(rows)


def nearest_style(features: np.ndarray, labels: np.ndarray, styles: Styles) -> np.ndarray:
    """Row id in ``styles`` of the centroid of each image's TRUE class nearest to it."""
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    out = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        rows = styles.of_class(label)
        if len(rows) == 0:
            raise ValueError(
                f"class {label} has application images but no writing style: it does not "
                "occur in the train/val images the styles are clustered from"
            )
        idx = np.flatnonzero(labels == label)
        c = styles.centroids[rows]
        # Squared distances by expansion: one matrix product for all of the class's images.
        d = (c * c).sum(1)[None, :] - 2.0 * features[idx] @ c.T
        out[idx] = rows[np.argmin(d, axis=1)]
    return out


# --------------------------------------------------------------------------- the online loop


def knn_votes(
    dists: np.ndarray, entry_labels: np.ndarray, ks: Sequence[int], weights: str = "uniform"
) -> np.ndarray:
    """Predictions of KNNs with each k in ``ks`` over the same training points.

    ``dists``: distances from the query to the points; ``entry_labels``: their labels.
    -1 where a KNN has fewer than k points. Same rules as scikit-learn's
    KNeighborsClassifier: ``uniform`` votes break ties towards the smallest label,
    ``distance`` weighs by 1/d (a point at distance 0 takes all the weight). Neighbours
    at equal distance are taken in the points' order.
    """
    m = len(dists)
    out = np.full(len(ks), -1, dtype=np.int64)
    if m == 0 or m < min(ks):
        return out
    order = np.argsort(dists, kind="stable")
    classes, inv = np.unique(entry_labels[order], return_inverse=True)
    if weights == "uniform":
        w = np.ones(m)
    elif weights == "distance":
        d = dists[order]
        zero = d == 0
        # sklearn: with a zero distance among a query's neighbours only those count.
        # Their count is cumulative in k, so handle it per k below through the mask.
        w = np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, d))
    else:
        raise ValueError(f"knn weights {weights!r}: choose one of {KNN_WEIGHTS}")
    onehot = np.zeros((m, len(classes)))
    onehot[np.arange(m), inv] = w
    cum = np.cumsum(onehot, axis=0)
    if weights == "distance" and zero.any():
        zhot = np.zeros((m, len(classes)))
        zhot[np.arange(m), inv] = zero
        zcum = np.cumsum(zhot, axis=0)
    for j, k in enumerate(ks):
        if k > m:
            continue
        votes = cum[k - 1]
        if weights == "distance" and zero[:k].any():
            votes = zcum[k - 1]
        out[j] = classes[int(np.argmax(votes))]  # argmax: first = smallest label on ties
    return out


@dataclass
class WriterRun:
    """The scored (test) images of one writer and resample, in processing order."""

    base: np.ndarray  # CNN prediction
    final: np.ndarray  # the adapted prediction
    chosen: np.ndarray  # 0 = CNN, j = the j-th KNN
    knn: np.ndarray  # (n, len(ks)) KNN predictions, -1 = none
    label: np.ndarray
    # The state after the last image (for inspection and tests).
    alpha: np.ndarray  # (1 + len(ks), num_classes): row 0 the CNN, then one row per k
    beta: np.ndarray
    history: dict[tuple[int, int], tuple[np.ndarray, int]]  # (pred, label) -> (mean, count)


def adapt_writer(
    features: np.ndarray,
    cnn_pred: np.ndarray,
    labels: np.ndarray,
    style_vectors: np.ndarray,
    scored: np.ndarray,
    num_classes: int,
    ks: Sequence[int] = KNN_KS,
    weights: str = "uniform",
) -> WriterRun:
    """Run one writer's images through the online loop, in the order given.

    ``style_vectors[i]`` is the centroid of image i's true class nearest to its
    features (:func:`nearest_style`); ``scored[i]`` marks a test image (adaptation
    images update the state without being scored). Labels are 0..num_classes-1.
    """
    n, nk = len(labels), len(ks)
    # Beta parameters per classifier (row 0 the CNN, then one per k) and label.
    alpha = np.ones((nk + 1, num_classes))
    beta = np.ones((nk + 1, num_classes))
    # History, grouped by the CNN prediction that starts the key: per prediction p the
    # labels y of its entries (insertion order), their sums and counts and the means.
    hist_labels: dict[int, list[int]] = {}
    hist_sum: dict[int, np.ndarray] = {}
    hist_count: dict[int, np.ndarray] = {}
    hist_mean: dict[int, np.ndarray] = {}
    row_of: dict[tuple[int, int], int] = {}
    min_k = min(ks)
    m_scored = int(np.count_nonzero(scored))
    base = np.empty(m_scored, np.int64)
    final = np.empty(m_scored, np.int64)
    chosen = np.empty(m_scored, np.int64)
    knn_out = np.empty((m_scored, nk), np.int64)
    lab_out = np.empty(m_scored, np.int64)
    no_votes = np.full(nk, -1, np.int64)
    s = 0
    for i in range(n):
        p, y, f = int(cnn_pred[i]), int(labels[i]), features[i]
        # ---- predict
        means = hist_mean.get(p)
        if means is not None and len(means) >= min_k:
            diff = means - f
            dists = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            votes = knn_votes(dists, np.asarray(hist_labels[p]), ks, weights)
        else:
            votes = no_votes
        best, best_conf = 0, alpha[0, p] / (alpha[0, p] + beta[0, p])
        for j in range(nk):
            q = votes[j]
            if q >= 0:
                conf = alpha[j + 1, q] / (alpha[j + 1, q] + beta[j + 1, q])
                if conf > best_conf:  # strict: the CNN, then the smaller k, wins ties
                    best, best_conf = j + 1, conf
        if scored[i]:
            base[s], chosen[s], lab_out[s] = p, best, y
            final[s] = p if best == 0 else votes[best - 1]
            knn_out[s] = votes
            s += 1
        # ---- update 1: history entry (p, y) takes in y's nearest centroid
        key = (p, y)
        r = row_of.get(key)
        if r is None:
            r = row_of[key] = len(hist_labels.setdefault(p, []))
            hist_labels[p].append(y)
            v = style_vectors[i][None, :].astype(np.float64)
            if p in hist_sum:
                hist_sum[p] = np.vstack([hist_sum[p], v])
                hist_count[p] = np.append(hist_count[p], 1.0)
            else:
                hist_sum[p], hist_count[p] = v, np.ones(1)
        else:
            hist_sum[p][r] += style_vectors[i]
            hist_count[p][r] += 1.0
        # ---- update 2: confidences of every classifier that predicted
        if p == y:
            alpha[0, p] += 1
        else:
            beta[0, p] += 1
        for j in range(nk):
            q = votes[j]
            if q >= 0:
                if q == y:
                    alpha[j + 1, q] += 1
                else:
                    beta[j + 1, q] += 1
        # ---- update 3: the KNNs of prediction p are refit on its new history
        hist_mean[p] = hist_sum[p] / hist_count[p][:, None]
    history = {(p, y): (hist_mean[p][r], int(hist_count[p][r])) for (p, y), r in row_of.items()}
    return WriterRun(base, final, chosen, knn_out, lab_out, alpha, beta, history)


# --------------------------------------------------------------------------- all writers


ADAPT_SPLIT, TEST_SPLIT = "adaptation", "test"  # split names of the `adaptation` scheme


@dataclass(frozen=True)
class AppSet:
    """The application writers' images, as the online loop needs them."""

    index: np.ndarray  # dataset row ids (the split file's `index`)
    features: np.ndarray  # float32 (n, D) penultimate features of the frozen CNN
    pred: np.ndarray  # CNN predictions, 0..num_classes-1
    label: np.ndarray  # true labels, 0..num_classes-1
    writer: np.ndarray  # writer ids
    style: np.ndarray  # row id of the true class's nearest centroid (nearest_style)


def knn_columns(ks: Sequence[int]) -> list[str]:
    return [f"knn_{k}" for k in ks]


_CENTROIDS: np.ndarray | None = None  # set in each worker process


def _init_worker(centroids: np.ndarray) -> None:
    global _CENTROIDS
    _CENTROIDS = centroids


def _writer_task(task: dict) -> pd.DataFrame:
    """Every resample of one writer (runs in a worker process)."""
    vectors = _CENTROIDS[task["style"]]
    frames = []
    for resample, adapt_pos, test_pos in task["resamples"]:
        order = np.concatenate([adapt_pos, test_pos])
        scored = np.zeros(len(order), bool)
        scored[len(adapt_pos) :] = True
        run = adapt_writer(
            task["features"][order],
            task["pred"][order],
            task["label"][order],
            vectors[order],
            scored,
            task["num_classes"],
            task["ks"],
            task["weights"],
        )
        frame = pd.DataFrame(
            {
                "resample": resample,
                "writer": task["writer"],
                "index": task["index"][test_pos],
                "label": run.label,
                "base": run.base,
                "final": run.final,
                "chosen": run.chosen,
            }
        )
        frame[knn_columns(task["ks"])] = run.knn
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def writer_tasks(
    app: AppSet,
    split: pd.DataFrame,
    *,
    num_classes: int,
    ks: Sequence[int] = KNN_KS,
    weights: str = "uniform",
    seed: int = 0,
) -> list[dict]:
    """One task per writer: its arrays and, per resample, the processing order.

    Adaptation and test images are each shuffled from ``(seed, resample, writer
    ordinal)``, so the order does not follow the dataset's (often label-sorted) rows.
    """
    split = split.copy()
    missing = ~np.isin(split["index"].to_numpy(), app.index)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} split rows name images that are not application images "
            f"(e.g. index {int(split['index'][missing].iloc[0])}); rebuild the features "
            "from the same split files"
        )
    bad = sorted(set(split["split"]) - {ADAPT_SPLIT, TEST_SPLIT})
    if bad:
        raise ValueError(f"adaptation split: unknown split name(s) {bad}; expected adaptation/test")
    if "resample" not in split:
        split["resample"] = 0
    order = np.argsort(app.index)
    split["pos"] = order[np.searchsorted(app.index[order], split["index"].to_numpy())]
    split["writer"] = app.writer[split["pos"].to_numpy()]
    tasks = []
    for w_ord, (writer, rows) in enumerate(split.groupby("writer", sort=True)):
        pos = np.unique(rows["pos"].to_numpy())
        resamples = []
        for resample, rr in rows.groupby("resample", sort=True):
            rng = np.random.default_rng([seed, int(resample), w_ord])
            parts = []
            for name in (ADAPT_SPLIT, TEST_SPLIT):
                sel = rr.loc[rr["split"] == name, "pos"].to_numpy()
                parts.append(rng.permutation(np.searchsorted(pos, sel)))
            resamples.append((int(resample), parts[0], parts[1]))
        tasks.append(
            {
                "writer": writer,
                "index": app.index[pos],
                "features": app.features[pos],
                "pred": app.pred[pos],
                "label": app.label[pos],
                "style": app.style[pos],
                "resamples": resamples,
                "num_classes": num_classes,
                "ks": tuple(ks),
                "weights": weights,
            }
        )
    return tasks


def run_adaptation(
    app: AppSet,
    centroids: np.ndarray,
    split: pd.DataFrame,
    *,
    num_classes: int,
    ks: Sequence[int] = KNN_KS,
    weights: str = "uniform",
    seed: int = 0,
    workers: int = 0,
    progress=None,
) -> pd.DataFrame:
    """The online loop for every writer and resample; one row per scored test image.

    Writers run in a pool of ``workers`` processes (0 = all cores, 1 = in this
    process). ``progress``: optional callable wrapping an iterable (e.g. tqdm).
    Columns: resample, writer, index, label, base, final, chosen, knn_<k>...
    """
    if weights not in KNN_WEIGHTS:
        raise ValueError(f"knn weights {weights!r}: choose one of {KNN_WEIGHTS}")
    tasks = writer_tasks(app, split, num_classes=num_classes, ks=ks, weights=weights, seed=seed)
    workers = workers or os.cpu_count() or 1
    wrap = progress or (lambda it, **_: it)
    if workers == 1 or len(tasks) == 1:
        _init_worker(centroids)
        frames = [_writer_task(t) for t in wrap(tasks, total=len(tasks))]
    else:
        # fork: the workers need no re-import of the caller's __main__ (a Snakemake
        # script would run again under spawn); this module's loop uses no threads.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(
            min(workers, len(tasks)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(centroids,),
        ) as pool:
            frames = list(wrap(pool.map(_writer_task, tasks, chunksize=1), total=len(tasks)))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["resample", "writer"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- scores


def upper_bound_hits(records: pd.DataFrame, ks: Sequence[int] = KNN_KS) -> np.ndarray:
    """Per test image: is the CNN or some KNN (that made a prediction) right?"""
    label = records["label"].to_numpy()
    hit = records["base"].to_numpy() == label
    for col in knn_columns(ks):
        hit |= records[col].to_numpy() == label
    return hit


def writer_scores(records: pd.DataFrame, ks: Sequence[int] = KNN_KS) -> pd.DataFrame:
    """Per (resample, writer): test images, base / improved / bound correct, accuracies."""
    frame = pd.DataFrame(
        {
            "resample": records["resample"],
            "writer": records["writer"],
            "images": 1,
            "base_correct": records["base"] == records["label"],
            "improved_correct": records["final"] == records["label"],
            "bound_correct": upper_bound_hits(records, ks),
        }
    )
    out = frame.groupby(["resample", "writer"], sort=True).sum().reset_index()
    out["base_acc"] = out["base_correct"] / out["images"]
    out["improved_acc"] = out["improved_correct"] / out["images"]
    return out


def resample_scores(records: pd.DataFrame, ks: Sequence[int] = KNN_KS) -> pd.DataFrame:
    """Per resample: the table's metrics (accuracies pooled over images, in percent)."""
    per_writer = writer_scores(records, ks)
    rows = []
    for resample, w in per_writer.groupby("resample", sort=True):
        n = int(w["images"].sum())
        base = 100.0 * w["base_correct"].sum() / n
        improved = 100.0 * w["improved_correct"].sum() / n
        diff = w["improved_correct"] - w["base_correct"]
        rows.append(
            {
                "resample": int(resample),
                "writers": len(w),
                "test_images": n,
                "base_acc": base,
                "improved_acc": improved,
                "gain": improved - base,
                "upper_bound": 100.0 * w["bound_correct"].sum() / n,
                "writers_improved": int((diff > 0).sum()),
                "writers_tied": int((diff == 0).sum()),
                "writers_worse": int((diff < 0).sum()),
            }
        )
    return pd.DataFrame(rows)


def resample_diagnostics(records: pd.DataFrame, ks: Sequence[int] = KNN_KS) -> pd.DataFrame:
    """Per resample, in percent of test images: why adaptation helps or not.

    knn_any: some KNN predicted (the history had >= min(k) entries for the CNN's
    prediction); knn_chosen: a KNN's prediction was taken; changed: the final label
    differs from the CNN's; fixed / broken: the CNN was wrong and the final label right,
    or the reverse; base_acc_knn_any / base_acc_no_knn: the CNN's accuracy on the
    images where a KNN predicted / where none did.
    """
    knn = records[knn_columns(ks)].to_numpy()
    frame = pd.DataFrame(
        {
            "resample": records["resample"].to_numpy(),
            "knn_any": (knn >= 0).any(axis=1),
            "knn_chosen": records["chosen"].to_numpy() > 0,
            "changed": records["final"].to_numpy() != records["base"].to_numpy(),
            "base_ok": records["base"].to_numpy() == records["label"].to_numpy(),
            "final_ok": records["final"].to_numpy() == records["label"].to_numpy(),
        }
    )
    rows = []
    for resample, f in frame.groupby("resample", sort=True):
        any_ = f["knn_any"]
        rows.append(
            {
                "resample": int(resample),
                "knn_any": 100.0 * any_.mean(),
                "knn_chosen": 100.0 * f["knn_chosen"].mean(),
                "changed": 100.0 * f["changed"].mean(),
                "fixed": 100.0 * (~f["base_ok"] & f["final_ok"]).mean(),
                "broken": 100.0 * (f["base_ok"] & ~f["final_ok"]).mean(),
                "base_acc_knn_any": 100.0 * f.loc[any_, "base_ok"].mean() if any_.any() else np.nan,
                "base_acc_no_knn": 100.0 * f.loc[~any_, "base_ok"].mean()
                if (~any_).any()
                else np.nan,
            }
        )
    return pd.DataFrame(rows)
