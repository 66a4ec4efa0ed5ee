"""IMDB movie reviews (Maas et al. 2011) for the OneModel study: text as an image.

``aclImdb_v1.tar.gz`` holds ``aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt``
(25k + 25k labelled reviews; ``unsup`` is skipped). The paper's text sensory layer
cleans each review, looks every word up in Google's pre-trained Word2Vec (300
values) and lays the words side by side: a 300 x 600 matrix (embedding x word
position, zero-padded or cut at 600 words). Word2Vec's 3.6 GB model is not part of
hwbench, so each word gets a fixed pseudo-random embedding instead, drawn from a
generator seeded by the word's DJB2 hash: the same word always gives the same
column, as with a lookup table, but without Word2Vec's semantics. Values are uint8
1..255 (0 is padding), ``embed_dim`` x ``max_words`` per review.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hwbench.datasets.common import make_meta
from hwbench.datasets.extract import open_tar

ARCHIVE = "aclImdb_v1.tar.gz"
CLASSES = ["negative", "positive"]
_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt$")
_TOKEN = re.compile(r"[a-z0-9]+|[!?]")
_NAMED = {"!": "exclamation_mark", "?": "questionmark"}  # as the paper's Table 1 spells them


def clean_words(text: str) -> list[str]:
    """Lower-case words of a review: HTML breaks and punctuation dropped, ! and ? named."""
    text = text.lower().replace("<br />", " ")
    return [_NAMED.get(t, t) for t in _TOKEN.findall(text)]


def word_vector(word: str, dim: int) -> np.ndarray:
    """The fixed pseudo-random uint8 embedding (1..255) of ``word``."""
    h = 5381
    for char in word:  # DJB2, kept to 64 bits for the generator's seed
        h = (h * 33 + ord(char)) & 0xFFFFFFFFFFFFFFFF
    return np.random.default_rng(h).integers(1, 256, dim, dtype=np.uint8)


def review_image(words: list[str], dim: int, max_words: int, cache: dict) -> np.ndarray:
    """``dim`` x ``max_words`` uint8: one column per word, zero columns after the last."""
    out = np.zeros((dim, max_words), dtype=np.uint8)
    for k, word in enumerate(words[:max_words]):
        vec = cache.get(word)
        if vec is None:
            vec = cache[word] = word_vector(word, dim)
        out[:, k] = vec
    return out


def read_imdb(files: dict[str, Path], options: dict | None = None):
    """``(images uint8 N x embed_dim x max_words, meta)``: train then test reviews.

    ``label`` 0 negative / 1 positive (``label_name`` the word), ``source_split``
    train/test, ``writer`` empty. Options ``embed_dim`` (default 32; Word2Vec has
    300) and ``max_words`` (default 600, the paper's).
    """
    options = options or {}
    dim, max_words = int(options.get("embed_dim", 32)), int(options.get("max_words", 600))
    archive = Path(files[ARCHIVE])
    found = []
    with open_tar(archive) as tar:
        for member in tar:
            match = _MEMBER.match(member.name)
            if match and member.isfile():
                text = tar.extractfile(member).read().decode("utf-8", errors="replace")
                found.append((match.group(1) != "train", member.name, match.group(2), text))
    if not found:
        raise ValueError(f"{archive}: no aclImdb/{{train,test}}/{{pos,neg}}/*.txt reviews")
    found.sort()  # train before test, then by path: the same order whatever the tar order
    cache: dict = {}
    images = np.stack([review_image(clean_words(t), dim, max_words, cache) for *_, t in found])
    labels = [1 if polarity == "pos" else 0 for _, _, polarity, _ in found]
    split = ["test" if is_test else "train" for is_test, *_ in found]
    return images, make_meta(labels, CLASSES, split, scripts=[""] * len(found))
