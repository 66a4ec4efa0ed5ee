"""Pyramidal Histogram Of Characters (PHOC, Almazán et al. 2014) and its decoding.

The OneModel study's single output layer is a PHOC: every class of every task is a
label string, and the network predicts the string's PHOC bits with one
BCE-with-logits loss. Decoding picks the nearest class PHOC by cosine similarity.

Layout of a PHOC vector: level (in the configured order), then region (left to
right), then symbol (alphabet order), so for levels (2, 3) and alphabet "ab" the
ten bits are L2R0a L2R0b L2R1a L2R1b L3R0a L3R0b ... A character at position i of an
n-character string occupies [i/n, (i+1)/n]; it counts for region r of level L,
[r/L, (r+1)/L], when at least half of its occupancy interval lies inside the region
(the rule of Almazán's and Sudholt's PHOC code, which the paper's authors reuse).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch


def phoc_alphabet(strings: Iterable[str]) -> str:
    """The union of the symbols of ``strings``, sorted by code point."""
    return "".join(sorted(set("".join(strings))))


def phoc_size(alphabet: str, levels: Sequence[int]) -> int:
    """Length of a PHOC vector: alphabet size times the sum of the levels."""
    return len(alphabet) * int(sum(levels))


def check_levels(levels: Sequence[int]) -> list[int]:
    """The levels as a list of positive ints, with a clear error otherwise."""
    levels = [int(level) for level in levels]
    if not levels or any(level < 1 for level in levels):
        raise ValueError(f"PHOC levels must be positive integers, got {levels}")
    return levels


def phoc(word: str, alphabet: str, levels: Sequence[int]) -> np.ndarray:
    """The PHOC of ``word`` as a float32 0/1 vector (layout: level, region, symbol)."""
    levels = check_levels(levels)
    index = {symbol: k for k, symbol in enumerate(alphabet)}
    size = len(alphabet)
    out = np.zeros(phoc_size(alphabet, levels), dtype=np.float32)
    n = len(word)
    if n == 0:
        raise ValueError("cannot build the PHOC of an empty string")
    offset = 0
    for level in levels:
        for pos, char in enumerate(word):
            if char not in index:
                raise ValueError(
                    f"symbol {char!r} of {word!r} is not in the PHOC alphabet {alphabet!r}"
                )
            # Exact integer test in units of 1/(n*level): the character spans
            # [pos*level, (pos+1)*level], region r spans [r*n, (r+1)*n].
            lo, hi = pos * level, (pos + 1) * level
            for region in range(level):
                overlap = min(hi, (region + 1) * n) - max(lo, region * n)
                if 2 * overlap >= level:
                    out[offset + region * size + index[char]] = 1.0
        offset += level * size
    return out


def phoc_matrix(words: Sequence[str], alphabet: str, levels: Sequence[int]) -> np.ndarray:
    """PHOCs of ``words`` stacked: float32, len(words) x phoc_size."""
    if not len(words):
        return np.zeros((0, phoc_size(alphabet, levels)), dtype=np.float32)
    return np.stack([phoc(w, alphabet, levels) for w in words])


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise cosine similarity, len(a) x len(b); an all-zero row scores 0."""
    a = torch.nn.functional.normalize(a.float(), dim=1)
    b = torch.nn.functional.normalize(b.float(), dim=1)
    return a @ b.T


def nearest_phoc(predicted: torch.Tensor, class_phocs: torch.Tensor) -> torch.Tensor:
    """Index of the most cosine-similar row of ``class_phocs`` for each prediction.

    ``predicted`` holds PHOC estimates (sigmoid outputs, N x D), ``class_phocs``
    the candidate classes' PHOCs (V x D). Ties go to the lower index.
    """
    if predicted.shape[1] != class_phocs.shape[1]:
        raise ValueError(
            f"PHOC sizes differ: predictions have {predicted.shape[1]}, "
            f"classes {class_phocs.shape[1]}"
        )
    return cosine_similarity(predicted, class_phocs).argmax(dim=1)
