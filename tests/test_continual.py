"""ACC/BWT/FWT on hand-made matrices, the EWC penalty and the Fisher diagonal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hwbench.continual import EWC, fisher_diagonal, transfer_metrics


def test_metrics_on_hand_made_matrix():
    # Row 0 before training (b), rows 1..3 after tasks 1..3.
    R = [
        [0.10, 0.20, 0.30],
        [0.80, 0.50, 0.40],
        [0.70, 0.90, 0.60],
        [0.60, 0.85, 0.95],
    ]
    m = transfer_metrics(R)
    assert m["acc"] == pytest.approx((0.60 + 0.85 + 0.95) / 3)
    # BWT over the first T-1 = 2 tasks: (R33... ) (0.60-0.80) and (0.85-0.90).
    assert m["bwt"] == pytest.approx(((0.60 - 0.80) + (0.85 - 0.90)) / 2)
    # FWT over tasks 2..3: R[1,2]-b2 = 0.50-0.20, R[2,3]-b3 = 0.60-0.30.
    assert m["fwt"] == pytest.approx(((0.50 - 0.20) + (0.60 - 0.30)) / 2)


def test_metrics_perfect_memory_and_single_task():
    R = np.array([[0.1, 0.1], [1.0, 0.1], [1.0, 1.0]])
    m = transfer_metrics(R)
    assert m == {"acc": 1.0, "bwt": 0.0, "fwt": 0.0}
    one = transfer_metrics([[0.2], [0.9]])
    assert one["acc"] == pytest.approx(0.9)
    assert math.isnan(one["bwt"]) and math.isnan(one["fwt"])


def test_metrics_reject_bad_shape():
    with pytest.raises(ValueError, match="T \\+ 1 rows"):
        transfer_metrics(np.zeros((3, 3)))


def _tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 5),
        nn.BatchNorm1d(5),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(5, 3),
    )


def _tiny_data(n: int = 20, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_ewc_penalty_zero_at_anchor_and_gradient_points_back():
    model = _tiny_model()
    fisher = {n: torch.rand_like(p) + 0.1 for n, p in model.named_parameters()}
    ewc = EWC(lam=3.0)
    assert float(ewc.penalty(model).detach()) == 0.0  # no finished task yet
    ewc.consolidate(model, fisher)
    assert float(ewc.penalty(model).detach()) == 0.0

    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    penalty = ewc.penalty(model)
    expected = sum(
        (3.0 * fisher[n] * (p.detach() - anchor[n]) ** 2).sum() for n, p in model.named_parameters()
    )
    assert float(penalty.detach()) == pytest.approx(float(expected), rel=1e-5)
    penalty.backward()
    for n, p in model.named_parameters():
        # d/dtheta = 2 lambda F (theta - theta*): a step against it moves towards theta*.
        torch.testing.assert_close(p.grad, 2 * 3.0 * fisher[n] * (p.detach() - anchor[n]))
        assert torch.all(p.grad * (anchor[n] - p.detach()) <= 0)
    # One small gradient step lowers the distance to the anchor.
    before = sum(((p.detach() - anchor[n]) ** 2).sum() for n, p in model.named_parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(0.01 * p.grad)
    after = sum(((p.detach() - anchor[n]) ** 2).sum() for n, p in model.named_parameters())
    assert after < before


def test_ewc_sums_over_past_tasks_and_wraps_a_loss():
    model = _tiny_model()
    ones = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    ewc = EWC(lam=0.5)
    ewc.consolidate(model, ones)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ewc.consolidate(model, ones)  # second anchor: theta + 1
    count = sum(p.numel() for p in model.parameters())
    # At theta + 1: first task contributes 1 per weight, second 0.
    assert float(ewc.penalty(model).detach()) == pytest.approx(0.5 * count)

    def base(outputs, batch):
        return outputs.sum(), {"ce": 7.0}

    loss, parts = ewc.wrap(base, model)(torch.tensor(2.0), None)
    assert float(loss.detach()) == pytest.approx(2.0 + 0.5 * count)
    assert parts["ce"] == 7.0 and float(parts["ewc"]) == pytest.approx(0.5 * count)


def test_ewc_guards_only_trainable_parameters():
    model = _tiny_model()
    model[1].weight.requires_grad_(False)
    fisher = {n: torch.ones_like(p) for n, p in model.named_parameters() if p.requires_grad}
    ewc = EWC(lam=1.0)
    ewc.consolidate(model, fisher)
    with torch.no_grad():
        model[1].weight.add_(5.0)  # frozen: not penalised
    assert float(ewc.penalty(model).detach()) == 0.0
    with pytest.raises(ValueError, match="lambda"):
        EWC(lam=-1)


def test_fisher_is_mean_squared_per_sample_gradient_in_eval_mode():
    model = _tiny_model()
    x, y = _tiny_data()
    model.train()
    fisher = fisher_diagonal(model, x, y, chunk_size=7)
    assert model.training  # mode restored
    # Reference: one sample at a time with ordinary autograd, eval mode.
    model.eval()
    ref = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        nn.functional.cross_entropy(model(xi[None]), yi[None]).backward()
        for n, p in model.named_parameters():
            ref[n] += p.grad**2 / len(x)
    for n in ref:
        torch.testing.assert_close(fisher[n], ref[n], rtol=1e-4, atol=1e-7)
        assert torch.all(fisher[n] >= 0)
    assert any(float(f.sum()) > 0 for f in fisher.values())


def test_fisher_batch_variant_non_negative_and_deterministic():
    model = _tiny_model()
    x, y = _tiny_data()
    a = fisher_diagonal(model, x, y, per_sample=False, chunk_size=5)
    b = fisher_diagonal(model, x, y, per_sample=False, chunk_size=5)
    for n in a:
        assert torch.all(a[n] >= 0)
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=0)
    # A transform is applied to each chunk before the forward pass.
    doubled = fisher_diagonal(model, x / 2, y, transform=lambda t: t * 2)
    plain = fisher_diagonal(model, x, y)
    for n in plain:
        torch.testing.assert_close(doubled[n], plain[n])
