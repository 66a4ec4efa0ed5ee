"""Independent references: hwbench's fast code against plain, obvious re-implementations.

Each reference is written from the method's description (the papers, the EMNIST
recipe, the engine's documented contract), with the libraries doing the work the
obvious way, and must agree with hwbench on many random inputs:

- :func:`hwbench.engine.fit` and a plain Adam loop give bit-identical weights;
- the writer-adaptation loop and a scikit-learn KNN refit at every image plus a
  dictionary of Beta counts make the same choices on 60 random sequences;
- EMNIST-style preprocessing and OpenCV blur + Pillow resize agree within one grey
  level on 200 glyphs, half of them touching the image's edge;
- the Fisher information's batch variant and per-chunk gradients from autograd agree.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from sklearn.neighbors import KNeighborsClassifier

from hwbench import preprocess as pp
from hwbench.continual import fisher_diagonal
from hwbench.engine import TrainConfig, fit, seed_everything
from hwbench.models import build_model
from hwbench.studies.adaptation import loop as ad

# --------------------------------------------------------------------------- engine.fit


def plain_adam(model, x, y, *, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """The textbook loop, following fit's documented contract on the CPU.

    Shuffle: a ``torch.randperm`` per epoch from a generator seeded by the run seed;
    in-loop randomness (dropout) from ``torch.manual_seed(seed)``; a last batch of
    one sample is dropped (BatchNorm cannot train on it).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=shuffle)
        for start in range(0, len(x), batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) == 1:
                continue
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.parametrize("name", ["base_cnn", "small_cnn"])
def test_fit_gives_the_weights_of_a_plain_adam_loop(name):
    gen = torch.Generator().manual_seed(1)
    # 97 = 3 x 32 + 1: every epoch ends with a one-sample batch to drop
    x = torch.randn(97, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (97,), generator=gen)
    seed_everything(0)
    model = build_model(name, 10)
    reference = copy.deepcopy(model)
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-3, seed=7, amp=False, channels_last=False)
    fit(model, {"x": x, "y": y}, cfg, run_dir=None, progress=False, device="cpu")
    plain_adam(reference, x, y, epochs=2, batch_size=32, lr=1e-3, seed=7)
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    changed = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert changed == [], f"weights differ from the plain loop: {changed}"


# --------------------------------------------------------------------------- adaptation


def reference_adaptation(features, pred, label, centroids, owners, scored, num_classes, weights):
    """The paper's loop, with a scikit-learn KNN refit for every image and every k.

    History: per (prediction, true label) the mean of the true class's nearest
    centroids; the KNNs for an image with CNN prediction p train on the entries whose
    prediction is p. Confidence of a classifier for a label: alpha / (alpha + beta) of
    its Beta(1, 1) counts. The most confident classifier wins, the CNN and then the
    smaller k on ties. After the prediction: history, then every classifier that
    predicted updates its counts for the label it predicted.
    Returns per scored image (cnn, final, chosen, knn predictions) and the Beta counts.
    """
    ks = ad.KNN_KS
    history: dict[tuple[int, int], list[np.ndarray]] = {}
    beta: dict[tuple[int, int], list[int]] = {}  # (classifier, label) -> [alpha, beta]
    out = []
    for f, p, y, is_scored in zip(features, pred, label, scored, strict=True):
        p, y = int(p), int(y)
        keys = [key for key in history if key[0] == p]
        train_x = np.array([np.mean(history[key], axis=0) for key in keys])
        train_y = np.array([key[1] for key in keys])
        votes = []
        for k in ks:
            if len(keys) < k:
                votes.append(-1)
                continue
            knn = KNeighborsClassifier(n_neighbors=k, weights=weights, algorithm="brute")
            votes.append(int(knn.fit(train_x, train_y).predict(f[None].astype(np.float64))[0]))
        candidates = [(0, p)] + [(j + 1, q) for j, q in enumerate(votes) if q >= 0]

        def confidence(candidate):
            a, b = beta.get(candidate, [1, 1])
            return a / (a + b)

        chosen, final = max(candidates, key=lambda c: (confidence(c), -c[0]))
        if is_scored:
            out.append((p, final, chosen, votes))
        true_class = np.flatnonzero(owners == y)
        nearest = true_class[np.argmin(np.linalg.norm(centroids[true_class] - f, axis=1))]
        history.setdefault((p, y), []).append(centroids[nearest].astype(np.float64))
        for classifier, q in candidates:
            counts = beta.setdefault((classifier, q), [1, 1])
            counts[0 if q == y else 1] += 1
    return out, beta


def random_sequence(rng: np.random.Generator):
    """A writer: images near some class's centroids, a CNN right about 2 times in 3."""
    classes, dim = int(rng.integers(3, 7)), int(rng.integers(2, 9))
    per_class = rng.integers(1, 4, size=classes)
    owners = np.repeat(np.arange(classes), per_class)
    centroids = rng.normal(size=(len(owners), dim)).astype(np.float32)
    n = int(rng.integers(15, 46))
    label = rng.integers(0, classes, n)
    style = np.array([rng.choice(np.flatnonzero(owners == c)) for c in label])
    features = (centroids[style] + rng.normal(scale=0.6, size=(n, dim))).astype(np.float32)
    # some images sit exactly on a centroid: distance 0 to a one-image history entry
    exact = rng.random(n) < 0.1
    features[exact] = centroids[style[exact]]
    wrong = rng.random(n) < 0.35
    confused = (label + rng.integers(1, classes, n)) % classes
    pred = np.where(wrong, confused, label)
    scored = np.zeros(n, bool)
    scored[int(n * rng.uniform(0.3, 0.7)) :] = True  # adaptation images first, then test
    return features, pred, label, centroids, owners, scored, classes


def test_adaptation_loop_matches_sklearn_and_beta_dictionary_on_60_sequences():
    rng = np.random.default_rng(2024)
    mismatches, scored_total, knn_predictions, knn_chosen = [], 0, 0, 0
    for seq in range(60):
        features, pred, label, centroids, owners, scored, classes = random_sequence(rng)
        weights = ad.KNN_WEIGHTS[seq % 2]
        styles = ad.Styles(centroids, owners)
        vectors = centroids[ad.nearest_style(features, label, styles)]
        run = ad.adapt_writer(features, pred, label, vectors, scored, classes, weights=weights)
        expected, beta = reference_adaptation(
            features, pred, label, centroids, owners, scored, classes, weights
        )
        got = list(zip(run.base, run.final, run.chosen, run.knn.tolist(), strict=True))
        for i, (ours, ref) in enumerate(zip(got, expected, strict=True)):
            if (int(ours[0]), int(ours[1]), int(ours[2]), ours[3]) != ref:
                mismatches.append((seq, weights, i, ours, ref))
        counts = np.stack([run.alpha, run.beta], axis=-1)
        for (classifier, q), (a, b) in beta.items():
            if tuple(counts[classifier, q]) != (a, b):
                mismatches.append((seq, weights, "beta", classifier, q, counts[classifier, q]))
        scored_total += len(expected)
        knn_predictions += sum(v >= 0 for _, _, _, votes in expected for v in votes)
        knn_chosen += sum(chosen > 0 for _, _, chosen, _ in expected)
    assert mismatches == []
    # the comparison exercised the KNNs and their choice, not just the CNN path
    exercised = (scored_total, knn_predictions, knn_chosen)
    assert scored_total > 600 and knn_predictions > 400 and knn_chosen >= 10, exercised


# --------------------------------------------------------------------------- preprocessing


def reference_emnist(black_on_white: np.ndarray, size: int = 28, border: int = 2) -> np.ndarray:
    """The paper's recipe (section 4.2) with OpenCV and Pillow, one step each.

    Invert; crop to the ink (inverted levels above 25) with a 1 px margin, zeros where
    the margin falls outside the image; Gaussian blur with sigma 1, zeros beyond the
    crop; centre in a square of the longer side; Pillow bicubic resize to
    size - 2 * border; brightest pixel to 255; an empty border around.
    """
    ink = np.asarray(ImageOps.invert(Image.fromarray(black_on_white)))
    padded = cv2.copyMakeBorder(ink, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    rows = np.flatnonzero((padded > 25).any(axis=1))
    cols = np.flatnonzero((padded > 25).any(axis=0))
    crop = padded[rows[0] - 1 : rows[-1] + 2, cols[0] - 1 : cols[-1] + 2].astype(np.float32)
    blurred = cv2.GaussianBlur(crop, (0, 0), sigmaX=1.0, borderType=cv2.BORDER_CONSTANT)
    side = max(blurred.shape)
    square = Image.new("F", (side, side), 0.0)
    h, w = blurred.shape
    square.paste(Image.fromarray(blurred), ((side - w) // 2, (side - h) // 2))
    inner = size - 2 * border
    small = np.asarray(square.resize((inner, inner), Image.Resampling.BICUBIC))
    small = np.clip(small, 0, None) * (255.0 / small.max())
    out = np.zeros((size, size), np.uint8)
    out[border:-border, border:-border] = np.clip(np.round(small), 0, 255)
    return out


def random_glyph(rng: np.random.Generator, touch_edge: bool) -> np.ndarray:
    """Black anti-aliased strokes on white, on a canvas of random (non-square) size."""
    height, width = (int(v) for v in rng.integers(40, 140, size=2))
    img = np.full((height, width), 255, np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        pts = np.column_stack(
            [rng.integers(4, width - 4, 4), rng.integers(4, height - 4, 4)]
        ).astype(np.int32)
        if touch_edge:  # pull one point onto a random side of the image
            side = int(rng.integers(4))
            pts[0, side % 2] = 0 if side < 2 else (width - 1, height - 1)[side % 2]
        thickness = int(rng.integers(2, 9))
        cv2.polylines(img, [pts], False, 0, thickness, lineType=cv2.LINE_AA)
    return img


def test_preprocessing_matches_opencv_pillow_recipe_on_200_glyphs():
    rng = np.random.default_rng(7)
    glyphs = [random_glyph(rng, touch_edge=i % 2 == 0) for i in range(200)]
    touching = [g for g in glyphs[::2]]
    assert all(
        (g[0] < 230).any() or (g[-1] < 230).any() or (g[:, 0] < 230).any() or (g[:, -1] < 230).any()
        for g in touching
    ), "every other glyph must reach the edge (its margin then lies outside the image)"
    got = pp.preprocess_arrays(glyphs, workers=1, progress=False)
    expected = np.stack([reference_emnist(g) for g in glyphs])
    diff = np.abs(got.astype(int) - expected.astype(int))
    worst = diff.reshape(len(glyphs), -1).max(axis=1)
    assert worst.max() <= 1, f"glyphs {np.flatnonzero(worst > 1).tolist()} differ by > 1"
    assert (expected.reshape(200, -1).max(axis=1) == 255).all()  # none came out blank


# --------------------------------------------------------------------------- Fisher


def fisher_model() -> torch.nn.Module:
    seed_everything(3)
    model = build_model("small_cnn", 5)
    model.train()  # fisher_diagonal must switch to eval mode itself
    # BatchNorm statistics that are not the defaults, so eval vs train mode matters
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model


def autograd_fisher(model, x, y, chunk: int) -> dict[str, torch.Tensor]:
    """sum over chunks of len(chunk) * (d mean loss(chunk) / d theta)^2, over N; eval mode.

    With chunk = 1 this is the per-sample empirical Fisher.
    """
    model.eval()
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        grads = torch.autograd.grad(F.cross_entropy(model(xb), yb), list(params.values()))
        for n, g in zip(params, grads, strict=True):
            total[n] += g.pow(2) * len(xb)
    model.train()
    return {n: t / len(x) for n, t in total.items()}


@pytest.mark.parametrize("chunk", [1, 4, 7])
def test_fisher_batch_variant_matches_autograd_per_chunk(chunk):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(23, 1, 28, 28, generator=gen)  # 23: the last chunk is short
    y = torch.randint(0, 5, (23,), generator=gen)
    model = fisher_model()
    batch = fisher_diagonal(model, x, y, per_sample=False, chunk_size=chunk)
    assert model.training  # its mode is restored
    reference = autograd_fisher(model, x, y, chunk)
    assert set(batch) == set(reference)
    for n in reference:
        torch.testing.assert_close(batch[n], reference[n], rtol=1e-4, atol=1e-9)
    if chunk == 1:  # one sample per chunk: the batch variant is the per-sample Fisher
        per_sample = fisher_diagonal(model, x, y, per_sample=True, chunk_size=5)
        for n in reference:
            torch.testing.assert_close(per_sample[n], reference[n], rtol=1e-4, atol=1e-9)
