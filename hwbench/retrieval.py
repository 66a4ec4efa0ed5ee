"""Retrieval metrics: average precision and word-spotting mAP (QbE, QbS).

Word spotting ranks a test set by similarity to a query and scores the ranking by
average precision (AP); mAP is the mean over queries.

- Query by Example (QbE): every test sample whose label occurs at least twice in
  the test set is a query once; it ranks the *other* test samples (the query itself
  is dropped from its own ranking, as PHOCNet does; the OneModel authors' code keeps
  it, which adds a free hit at rank 1). A query with no other relevant sample is
  skipped, since its AP is undefined.
- Stop words (IAM's protocol) are never queries but stay in every ranking:
  ``qbe_map(may_query=...)``; for QbS the caller leaves them out of the query list
  (:mod:`hwbench.stopwords`).
- Query by String (QbS): every unique label in the test set is a query once; its
  embedding (e.g. the PHOC of the string) ranks all test samples.

Rankings use cosine similarity, descending, ties broken by the lower index
(a stable sort), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

QUERY_CHUNK = 1024  # queries scored at a time, so memory stays O(chunk x N)


@dataclass(frozen=True)
class RetrievalResult:
    """mAP over the queries, the AP of each query, and how many queries there were."""

    map: float
    ap: np.ndarray
    n_queries: int


def average_precision(relevance: Sequence[bool] | np.ndarray) -> float:
    """AP of one ranking given as relevance flags in rank order (0 when none is relevant).

    AP = (1 / R) * sum over relevant ranks k of precision@k, R = number relevant.
    """
    return float(_average_precisions(torch.as_tensor(np.asarray(relevance))[None])[0])


def _average_precisions(relevance: torch.Tensor) -> torch.Tensor:
    """Row-wise AP of a Q x M relevance matrix in rank order."""
    rel = relevance.to(torch.float64)
    ranks = torch.arange(1, rel.shape[1] + 1, dtype=torch.float64)
    precision = rel.cumsum(dim=1) / ranks
    n_rel = rel.sum(dim=1)
    return torch.where(n_rel > 0, (precision * rel).sum(dim=1) / n_rel.clamp(min=1), 0.0)


def _codes(labels: Sequence) -> np.ndarray:
    """Labels (strings or ints) -> integer codes, equal labels equal codes."""
    _, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return codes


def _rank_and_score(
    queries: torch.Tensor,
    query_codes: torch.Tensor,
    items: torch.Tensor,
    item_codes: torch.Tensor,
    exclude: torch.Tensor | None,
) -> torch.Tensor:
    """AP of each query's cosine ranking of ``items``; ``exclude[q]`` drops one item."""
    items_n = torch.nn.functional.normalize(items.double(), dim=1)
    out = []
    for start in range(0, len(queries), QUERY_CHUNK):
        q = torch.nn.functional.normalize(queries[start : start + QUERY_CHUNK].double(), dim=1)
        sim = q @ items_n.T
        if exclude is not None:
            rows = torch.arange(len(q))
            sim[rows, exclude[start : start + QUERY_CHUNK]] = -torch.inf
        order = torch.sort(sim, dim=1, descending=True, stable=True).indices
        relevant = item_codes[order] == query_codes[start : start + QUERY_CHUNK, None]
        if exclude is not None:
            relevant = relevant[:, :-1]  # the excluded item sorts last; drop it
        out.append(_average_precisions(relevant))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def qbe_map(
    embeddings: torch.Tensor | np.ndarray,
    labels: Sequence,
    may_query: Sequence[bool] | np.ndarray | None = None,
) -> RetrievalResult:
    """Query-by-Example mAP: each sample with a repeated label queries the others.

    ``may_query`` (one flag per sample) keeps samples from being queries (e.g. stop
    words, IAM's protocol) while they stay in every ranking.
    """
    emb = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    codes = torch.as_tensor(_codes(labels))
    if len(codes) != len(emb):
        raise ValueError(f"{len(emb)} embeddings but {len(codes)} labels")
    counts = torch.bincount(codes) if len(codes) else torch.zeros(0, dtype=torch.long)
    eligible = counts[codes] >= 2 if len(codes) else codes.bool()
    if may_query is not None:
        if len(may_query) != len(codes):
            raise ValueError(f"{len(may_query)} query flags but {len(codes)} labels")
        eligible &= torch.as_tensor(np.asarray(may_query, dtype=bool))
    query_idx = torch.nonzero(eligible).flatten()
    ap = _rank_and_score(emb[query_idx], codes[query_idx], emb, codes, exclude=query_idx)
    return RetrievalResult(float(ap.mean()) if len(ap) else float("nan"), ap.numpy(), len(ap))


def qbs_map(
    embeddings: torch.Tensor | np.ndarray,
    labels: Sequence,
    query_labels: Sequence,
    query_embeddings: torch.Tensor | np.ndarray,
) -> RetrievalResult:
    """Query-by-String mAP: each (unique) query string's embedding ranks all samples.

    ``query_labels`` are the strings, ``query_embeddings`` their embeddings (e.g.
    PHOCs), row by row. Queries whose label is absent from ``labels`` score AP 0;
    callers normally pass the unique labels of the test set.
    """
    emb = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    qemb = torch.as_tensor(np.asarray(query_embeddings), dtype=torch.float64)
    if len(query_labels) != len(qemb):
        raise ValueError(f"{len(qemb)} query embeddings but {len(query_labels)} query labels")
    if len(labels) != len(emb):
        raise ValueError(f"{len(emb)} embeddings but {len(labels)} labels")
    all_codes = _codes(list(labels) + list(query_labels))
    item_codes = torch.as_tensor(all_codes[: len(labels)])
    query_codes = torch.as_tensor(all_codes[len(labels) :])
    ap = _rank_and_score(qemb, query_codes, emb, item_codes, exclude=None)
    return RetrievalResult(float(ap.mean()) if len(ap) else float("nan"), ap.numpy(), len(ap))
