"""The writer-adaptation study: styles, the online loop, scores (hand-computed values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from hwbench.studies.adaptation import loop as ad

# --------------------------------------------------------------------------- styles


@pytest.mark.parametrize(
    "n, k",
    [(1, 5), (500, 5), (4000, 5), (4999, 5), (5000, 6), (10500, 11), (28999, 29), (29000, 30)]
    + [(10**6, 30)],
)
def test_n_styles_formula(n, k):
    assert ad.n_styles(n) == k


def test_fit_styles_counts_and_owners():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = np.array([0] * 20 + [3] * 7 + [5] * 3)
    st = ad.fit_styles(x, y, seed=0, n_init=2)
    # 5 clusters each (n < 4000); class 5 has only 3 images, so 3 centroids.
    assert list(st.labels) == [0] * 5 + [3] * 5 + [5] * 3
    assert st.centroids.shape == (13, 4)
    # A class's images are one per centroid when k == n.
    got = {tuple(np.round(c, 5)) for c in st.centroids[st.labels == 5]}
    assert got == {tuple(np.round(v, 5)) for v in x[y == 5]}


def test_nearest_style_uses_true_class_only():
    st = ad.Styles(
        centroids=np.array([[0, 0], [10, 0], [1, 0], [20, 0]], np.float32),
        labels=np.array([0, 0, 1, 1]),
    )
    x = np.array([[0.9, 0], [0.9, 0], [9, 0]], np.float32)
    y = np.array([0, 1, 1])
    # Image 0 of class 0 -> centroid 0; image 1 (class 1) sits on class 1's centroid 2;
    # image 2 (at 9) is nearest to class 0's (10, 0) overall but must get class 1's (1, 0).
    assert list(ad.nearest_style(x, y, st)) == [0, 2, 2]
    with pytest.raises(ValueError, match="class 7"):
        ad.nearest_style(x[:1], np.array([7]), st)


def test_style_quality_knn_on_centroids():
    st = ad.Styles(
        centroids=np.array([[0, 0], [0, 1], [10, 0], [10, 1]], np.float32),
        labels=np.array([0, 0, 1, 1]),
    )
    x = np.array([[0, 0.4], [9, 0], [4, 0], [6, 0]], np.float32)
    y = np.array([0, 1, 1, 1])
    q = ad.style_quality(st, x, y, ks=(1, 3, 4, 15))
    # k=1: (4, 0) is nearer class 0 -> 3/4. k=3: 2 of 3 nearest decide the same way.
    # k=4: 2-2 tie -> smallest label 0 for every image -> 1/4. k=15 > 4 centroids: skipped.
    assert list(q["k"]) == [1, 3, 4]
    assert list(q["accuracy"]) == [0.75, 0.75, 0.25]


# --------------------------------------------------------------------------- KNN votes


@pytest.mark.parametrize("weights", ad.KNN_WEIGHTS)
def test_knn_votes_match_sklearn(weights):
    rng = np.random.default_rng(1)
    for trial in range(40):
        m = int(rng.integers(1, 14))
        pts = rng.normal(size=(m, 3))
        lab = rng.integers(0, 4, size=m)
        q = rng.normal(size=3)
        got = ad.knn_votes(np.linalg.norm(pts - q, axis=1), lab, ad.KNN_KS, weights)
        for j, k in enumerate(ad.KNN_KS):
            if k > m:
                assert got[j] == -1
                continue
            knn = KNeighborsClassifier(n_neighbors=k, weights=weights, algorithm="brute")
            assert got[j] == knn.fit(pts, lab).predict(q[None])[0], (trial, k)


def test_knn_votes_tie_breaks_to_smallest_label_and_zero_distance():
    d = np.array([1.0, 2.0, 3.0, 4.0])
    lab = np.array([7, 3, 9, 1])
    # uniform: distinct labels tie, the smallest among the k nearest wins.
    assert list(ad.knn_votes(d, lab, (2, 4, 6))) == [3, 1, -1]
    # distance: the nearest dominates; a zero distance takes all the weight.
    assert list(ad.knn_votes(d, lab, (2, 4), "distance")) == [7, 7]
    d0 = np.array([0.5, 0.0, 3.0, 4.0])
    assert list(ad.knn_votes(d0, lab, (2, 4), "distance")) == [3, 3]


# --------------------------------------------------------------------------- the online loop


def run(seq, scored=None, ks=ad.KNN_KS, weights="uniform", num_classes=5):
    """Run adapt_writer on (pred, label, feature, style vector) tuples."""
    pred = np.array([s[0] for s in seq])
    label = np.array([s[1] for s in seq])
    feat = np.array([s[2] for s in seq], np.float32)
    vec = np.array([s[3] for s in seq], np.float32)
    scored = np.ones(len(seq), bool) if scored is None else np.asarray(scored)
    return ad.adapt_writer(feat, pred, label, vec, scored, num_classes, ks, weights)


def test_history_keys_and_running_means():
    seq = [
        (1, 0, [0, 0], [2, 0]),
        (1, 0, [0, 0], [4, 2]),
        (1, 1, [0, 0], [9, 9]),
        (0, 1, [0, 0], [1, 1]),
        (1, 0, [0, 0], [6, 4]),
    ]
    h = run(seq).history
    assert set(h) == {(1, 0), (1, 1), (0, 1)}
    mean, count = h[(1, 0)]
    assert count == 3 and np.allclose(mean, [4, 2])  # mean of (2,0), (4,2), (6,4)
    assert h[(1, 1)][1] == 1 and np.allclose(h[(1, 1)][0], [9, 9])
    assert h[(0, 1)][1] == 1 and np.allclose(h[(0, 1)][0], [1, 1])


def test_beta_update_per_classifier_and_label():
    # CNN: predicts 2 three times (right, wrong, right), predicts 0 once (wrong).
    seq = [(2, 2, [0], [0]), (2, 1, [0], [1]), (2, 2, [0], [0]), (0, 3, [0], [0])]
    r = run(seq, num_classes=4)
    assert r.alpha[0].tolist() == [1, 1, 3, 1]
    assert r.beta[0].tolist() == [2, 1, 2, 1]
    # KNN_2 predicted once: at image 2 (entries (2,2), (2,1) -> smallest label 1), wrong.
    assert r.knn[:, 0].tolist() == [-1, -1, 1, -1]
    assert r.alpha[1].tolist() == [1, 1, 1, 1]
    assert r.beta[1].tolist() == [1, 2, 1, 1]
    assert (r.alpha[2:] == 1).all() and (r.beta[2:] == 1).all()  # k >= 4 never predicted
    # Confidence at image 2: CNN on 2 is 2/4 (one right, one wrong), KNN_2 on 1 has its
    # prior 1/2: a tie, which the CNN wins.
    assert r.chosen.tolist() == [0, 0, 0, 0]


def test_tie_goes_to_cnn_then_smaller_k():
    # Image 2: CNN confidence for 1 is 1/2 after one right and one wrong prediction,
    # KNN_2 (labels 0 and 1 -> predicts 0) has its prior 1/2: a tie, the CNN wins.
    seq = [(1, 1, [0], [0]), (1, 0, [0], [5]), (1, 0, [0], [5])]
    r = run(seq, ks=(2, 2), num_classes=2)
    assert r.knn[2].tolist() == [0, 0]
    assert r.chosen[2] == 0 and r.final[2] == 1
    # Image 3: CNN now 2/5 for label 1; both KNNs were right once: 2/3 each -> the first.
    r = run(seq + [(1, 0, [0], [5])], ks=(2, 2), num_classes=2)
    assert r.chosen[3] == 1 and r.final[3] == 0


def test_online_order_predict_before_update():
    # Prediction 1 gets 4 distinct keys at images 0..3; KNN_4 may predict from image 4 on.
    seq = [(1, y, [float(y)], [float(y)]) for y in (1, 0, 2, 3)] + [(1, 1, [1.0], [1.0])]
    r = run(seq, ks=(2, 4))
    # Image 0 and 1: fewer than 2 entries before them -> no KNN at all.
    assert r.knn[:2].tolist() == [[-1, -1], [-1, -1]]
    # Image 2: KNN_2 on entries 1 (at 1) and 0 (at 0) -> smallest label 0.
    # Image 3 (at 3): its two nearest entries are 2 and 1 -> 1. It brings the 4th entry
    # but is predicted before that is added: no KNN_4 yet, and KNN_4's Beta never moved.
    assert r.knn[2].tolist() == [0, -1]
    assert r.knn[3].tolist() == [1, -1]
    assert r.knn[4].tolist() == [0, 0]
    assert r.beta[2].sum() == 5 + 1 and r.alpha[2].sum() == 5  # only image 4 counted
    # The CNN chose at image 0 on the prior alone (its own outcome comes after).
    assert r.chosen[0] == 0


def test_unscored_images_update_but_are_not_reported():
    seq = [(1, 1, [0], [0]), (1, 0, [0], [5]), (1, 0, [0], [5]), (1, 0, [0], [5])]
    r = run(seq, scored=[False, False, False, True], num_classes=2)
    assert len(r.base) == 1 and r.label.tolist() == [0]
    assert r.history[(1, 0)][1] == 3


def test_upper_bound_counts_any_right_classifier():
    rec = pd.DataFrame(
        {
            "label": [3, 3, 3, 3],
            "base": [3, 1, 1, 1],
            "knn_2": [-1, 3, -1, 2],
            "knn_4": [1, -1, -1, 3],
        }
    )
    assert ad.upper_bound_hits(rec, ks=(2, 4)).tolist() == [True, True, False, True]


def test_resample_scores_by_hand():
    rec = pd.DataFrame(
        {
            "resample": [0] * 5 + [1] * 3,
            "writer": ["a", "a", "a", "b", "b", "a", "b", "b"],
            "label": [1, 1, 2, 0, 0, 1, 0, 0],
            "base": [1, 0, 0, 0, 1, 1, 0, 0],
            "final": [1, 1, 0, 0, 1, 1, 0, 1],
            "chosen": 0,
            "knn_2": [-1, 1, 2, -1, 0, -1, -1, 1],
        }
    )
    s = ad.resample_scores(rec, ks=(2,)).set_index("resample")
    # resample 0: base right 2/5, final 3/5, bound 5/5; a: 1 -> 2 (improved), b: 1 -> 1.
    assert s.loc[0, "test_images"] == 5 and s.loc[0, "writers"] == 2
    assert s.loc[0, "base_acc"] == pytest.approx(40.0)
    assert s.loc[0, "improved_acc"] == pytest.approx(60.0)
    assert s.loc[0, "gain"] == pytest.approx(20.0)
    assert s.loc[0, "upper_bound"] == pytest.approx(100.0)
    assert s.loc[0, ["writers_improved", "writers_tied", "writers_worse"]].tolist() == [1, 1, 0]
    # resample 1: a 1 -> 1 (tied), b 2 -> 1 (worse).
    assert s.loc[1, "base_acc"] == pytest.approx(100.0)
    assert s.loc[1, "improved_acc"] == pytest.approx(200 / 3)
    assert s.loc[1, ["writers_improved", "writers_tied", "writers_worse"]].tolist() == [0, 1, 1]


# --------------------------------------------------------------------------- two writers


def two_writer_case():
    """Writer A writes 0s the CNN reads as 1 (and one 2 read as 1); B is read right.

    Styles (2-D): class 0 at (0, 0) and (5, 1), class 1 at (10, 0), class 2 at (0, 10).
    A's zeros sit near (5, 1), between the classes, hence the CNN's error.
    """
    centroids = np.array([[0, 0], [5, 1], [10, 0], [0, 10]], np.float32)
    styles = ad.Styles(centroids, np.array([0, 0, 1, 2]))
    rows = []
    for i in range(12):  # writer A: 12 zeros read as 1, one 2 read as 1
        rows.append(("A", [4.6 + 0.05 * i, 0.8], 0, 1))
    rows.append(("A", [2.0, 6.0], 2, 1))
    for i in range(6):  # writer B: zeros and ones read right
        rows.append(("B", [0.2 * i, 0.1], 0, 0))
        rows.append(("B", [10.0 - 0.2 * i, 0.1], 1, 1))
    writer = np.array([r[0] for r in rows])
    feats = np.array([r[1] for r in rows], np.float32)
    label = np.array([r[2] for r in rows])
    pred = np.array([r[3] for r in rows])
    app = ad.AppSet(
        index=np.arange(len(rows)) + 100,
        features=feats,
        pred=pred,
        label=label,
        writer=writer,
        style=ad.nearest_style(feats, label, styles),
    )
    # Test: A's last three zeros; B's last zero and one. Two resamples, the same split.
    test = set(range(9, 12)) | {23, 24}
    split = pd.DataFrame(
        [
            {"index": i + 100, "split": "test" if i in test else "adaptation", "resample": r}
            for r in (0, 1)
            for i in range(len(rows))
        ]
    )
    return app, styles, split


@pytest.mark.parametrize("weights", ad.KNN_WEIGHTS)
@pytest.mark.parametrize("workers", [1, 2])
def test_two_writers_correction_fires(weights, workers):
    app, styles, split = two_writer_case()
    rec = ad.run_adaptation(
        app, styles.centroids, split, num_classes=3, weights=weights, workers=workers
    )
    assert len(rec) == 10 and set(rec["resample"]) == {0, 1}
    a, b = rec[rec["writer"] == "A"], rec[rec["writer"] == "B"]
    # A: the CNN says 1 for every test zero; the KNN on A's history says 0 and wins.
    assert (a["base"] == 1).all() and (a["label"] == 0).all()
    assert (a["final"] == 0).all() and (a["chosen"] > 0).all()
    # B: one entry per prediction in its history -> no KNN ever predicts; nothing changes.
    assert (b["knn_2"] == -1).all() and (b["final"] == b["base"]).all()
    s = ad.resample_scores(rec)
    assert s["base_acc"].tolist() == pytest.approx([40.0, 40.0])
    assert s["improved_acc"].tolist() == pytest.approx([100.0, 100.0])
    assert s["upper_bound"].tolist() == pytest.approx([100.0, 100.0])
    assert s[["writers_improved", "writers_tied", "writers_worse"]].values.tolist() == [
        [1, 1, 0],
        [1, 1, 0],
    ]


def test_run_adaptation_rejects_foreign_split_rows():
    app, styles, split = two_writer_case()
    bad = pd.concat([split, pd.DataFrame([{"index": 5, "split": "test", "resample": 0}])])
    with pytest.raises(ValueError, match="index 5"):
        ad.run_adaptation(app, styles.centroids, bad, num_classes=3, workers=1)
    bad = split.replace({"split": {"test": "val"}})
    with pytest.raises(ValueError, match="val"):
        ad.run_adaptation(app, styles.centroids, bad, num_classes=3, workers=1)


def test_fit_styles_same_with_worker_processes():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=120)
    one = ad.fit_styles(x, y, seed=1, n_init=2, workers=1)
    two = ad.fit_styles(x, y, seed=1, n_init=2, workers=2)
    assert np.array_equal(one.labels, two.labels)
    assert np.allclose(one.centroids, two.centroids)


# --------------------------------------------------------------------------- base CNN data


def test_writer_splits_keep_configured_classes(tmp_path):
    from hwbench.charsets import by_label
    from hwbench.store import save_processed
    from hwbench.studies.adaptation import job as base

    labels = np.array([0, 5, 31, 12, 31, 0, 80, 5, 12])  # 12: an Arabic digit
    meta = pd.DataFrame(
        {
            "label": labels,
            "label_name": [by_label(v).label_name for v in labels],
            "script": "latin",
            "writer": [f"w{i % 3}" for i in range(9)],
            "pen": "",
            "source_split": "",
        }
    )
    images = np.arange(9, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    save_processed(tmp_path / "proc", images, meta)
    split = pd.DataFrame({"index": range(9), "split": ["train", "val", "app"] * 3})
    split.to_csv(tmp_path / "writer.csv", index=False)

    parts, classes = base.load_writer_splits(
        tmp_path / "proc", tmp_path / "writer.csv", ["latin_digits", "latin_letters"]
    )
    assert classes.tolist() == [0, 5, 31, 80]  # 12 dropped; local label = position
    assert parts["train"].index.tolist() == [0, 6]  # rows 3 (label 12) dropped
    assert parts["train"].y.tolist() == [0, 3]
    assert parts["val"].index.tolist() == [1, 4, 7] and parts["val"].y.tolist() == [1, 2, 1]
    assert parts["app"].index.tolist() == [2, 5] and parts["app"].y.tolist() == [2, 0]
    assert parts["app"].writer.tolist() == ["w2", "w2"]
    assert parts["app"].x[:, 0, 0].tolist() == [2, 5]
    _, every = base.load_writer_splits(tmp_path / "proc", tmp_path / "writer.csv")
    assert every.tolist() == [0, 5, 12, 31, 80]
    split.assign(split="train").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="val"):
        base.load_writer_splits(tmp_path / "proc", tmp_path / "bad.csv")
