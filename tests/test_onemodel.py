"""OneModel study: PHOC, DJB2 discriminator, decoding, retrieval mAP, collisions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwbench.retrieval import average_precision, qbe_map, qbs_map
from hwbench.studies.onemodel_labels import (
    build_vocabulary,
    count_collisions,
    discriminate,
    djb2,
    next_prime,
)
from hwbench.studies.phoc import nearest_phoc, phoc, phoc_alphabet, phoc_matrix

# --- PHOC ------------------------------------------------------------------


def test_phoc_two_letters_levels_2_3():
    # "ab": a spans [0, .5], b [.5, 1].
    # L2: R0 [0,.5] holds a, R1 holds b.  L3: a covers 2/3 of itself in R0 [0,1/3]
    # (kept), 1/3 in R1 (dropped); b likewise in R2.
    expected = [1, 0, 0, 1] + [1, 0, 0, 0, 0, 1]
    assert phoc("ab", "ab", [2, 3]).tolist() == expected


def test_phoc_exactly_half_counts():
    # "abc", level 2: b spans [1/3, 2/3], exactly half in each region -> in both.
    assert phoc("abc", "abc", [2]).tolist() == [1, 1, 0, 0, 1, 1]


def test_phoc_single_character_only_level_2():
    # one character spans [0, 1]: half in each L2 region, a third in each L3 region.
    assert phoc("a", "ab", [2, 3]).tolist() == [1, 0, 1, 0] + [0] * 6


def test_phoc_layout_level_region_symbol():
    # alphabet "abc", level 2 then 3; "ca": c in L2R0 (index 2), a in L2R1 (3 + 0),
    # c in L3R0 (6 + 2), a in L3R2 (6 + 6 + 0).
    vec = phoc("ca", "abc", [2, 3])
    assert np.flatnonzero(vec).tolist() == [2, 3, 8, 12]
    assert vec.dtype == np.float32 and vec.shape == (15,)


def test_phoc_paper_levels_size_and_unknown_symbol():
    alphabet = phoc_alphabet(["three", "two"])
    assert alphabet == "ehortw"  # sorted by code point
    assert phoc_matrix(["three", "two"], alphabet, [2, 3, 4, 5]).shape == (2, 6 * 14)
    with pytest.raises(ValueError, match="'s' of 'six' is not in the PHOC alphabet"):
        phoc("six", alphabet, [2])


# --- DJB2 and the discriminator -------------------------------------------


def test_djb2_known_values():
    assert djb2("") == 5381
    assert djb2("a") == 177670  # 5381 * 33 + 97
    assert djb2("ab") == 177670 * 33 + 98


def test_djb2_reproduces_paper_figure5():
    codes = {
        "payspeech": 99881,
        "payvision": 712162,
        "paylanguage": 834868,
        "wayspeech": 893078,
        "wayvision": 505356,
        "waylanguage": 623809,
        "sayspeech": 296965,
        "sayvision": 909246,
        "saylanguage": 458699,
    }
    for text, code in codes.items():
        assert djb2(text) % 1000003 == code, text


def test_next_prime_and_discriminators():
    assert next_prime(127) == 131  # the paper's stop-word example
    assert next_prime(30) == 31 and next_prime(31) == 37 and next_prime(0) == 2
    assert discriminate("sky", "speech", "none") == "sky"
    assert discriminate("sky", "speech", "concat") == "skyspeech"
    assert discriminate("pay", "speech", "djb2", 1000003) == "pay99881"
    with pytest.raises(ValueError, match="unknown discriminator"):
        discriminate("sky", "speech", "md5")


def test_vocabulary_djb2_default_prime_and_alphabet():
    words = {"latin": ["one", "two"], "arabic": ["one", "two"]}
    vocab = build_vocabulary(words, [2], "djb2")
    assert vocab.prime == 5  # first prime above 4 classes
    expected = [w + str(djb2(w + t) % 5) for t, ws in words.items() for w in ws]
    assert vocab.strings == expected
    digits = {c for s in vocab.strings for c in s if c.isdigit()}
    assert digits <= set(vocab.alphabet)
    assert vocab.phocs.shape == (4, 2 * len(vocab.alphabet))
    assert vocab.index("arabic", ["two", "one"]).tolist() == [3, 2]
    with pytest.raises(KeyError, match="'three' is not a class of task 'latin'"):
        vocab.index("latin", ["three"])
    with pytest.raises(ValueError, match="not prime"):
        build_vocabulary(words, [2], "djb2", prime=9)


def test_vocabulary_unhashed_task_keeps_plain_words():
    vocab = build_vocabulary({"a": ["x"], "b": ["x"]}, [2], "concat", unhashed=["b"])
    assert vocab.strings == ["xa", "x"]


# --- collisions ------------------------------------------------------------


def test_count_collisions_hand_made():
    vocab = {"A": ["three", "one"], "B": ["three", "two"], "C": ["three", "one", "one"]}
    # "three" is used by A, B, C; "one" by A and C; "two" only by B.
    assert count_collisions(vocab) == 2
    assert count_collisions({"A": ["x", "x"]}) == 0  # repeats inside one task don't collide


def test_vocabulary_collisions_with_and_without_discriminator():
    words = {"A": ["three", "one"], "B": ["three", "two"], "C": ["three", "one"]}
    assert build_vocabulary(words, [2, 3], "none").collisions() == {"strings": 2, "phocs": 2}
    assert build_vocabulary(words, [2, 3], "concat").collisions() == {"strings": 0, "phocs": 0}
    # With a modulus of 2 the hash digit can only be 0 or 1: "three" of three tasks
    # must share a digit with another task.
    assert build_vocabulary(words, [2, 3], "djb2", prime=2).collisions()["strings"] >= 1
    assert build_vocabulary(words, [2, 3], "djb2", prime=1000003).collisions()["strings"] == 0


# --- nearest-PHOC decoding -------------------------------------------------


def test_nearest_phoc_cosine():
    classes = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]])
    pred = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.6, 0.6, 0.1, 0.1], [0.1, 0.7, 0.2, 0.9]])
    assert nearest_phoc(pred, classes).tolist() == [0, 2, 1]
    # a prediction equally close to two classes goes to the lower index
    assert nearest_phoc(torch.tensor([[1.0, 0.5, 0.5, 0.0]]), classes).tolist() == [0]


def test_nearest_phoc_decodes_noisy_word_phocs():
    words = ["zero", "one", "two", "three"]
    alphabet = phoc_alphabet(words)
    classes = torch.from_numpy(phoc_matrix(words, alphabet, [2, 3, 4, 5]))
    noisy = (classes * 0.7 + 0.15)[[3, 0, 2]]
    assert nearest_phoc(noisy, classes).tolist() == [3, 0, 2]


# --- retrieval mAP ---------------------------------------------------------


def test_average_precision_hand_made():
    assert average_precision([1, 0, 1, 0]) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision([0, 0, 1]) == pytest.approx(1 / 3)
    assert average_precision([0, 0]) == 0.0


# Four samples: cosines x0.x1 = 0, x0.x2 = .8, x0.x3 = .6, x1.x2 = .6, x1.x3 = .8, x2.x3 = .96
EMB = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [0.6, 0.8]])


def test_qbe_map_drops_the_query():
    # A-queries rank their A partner last (AP 1/3 each); B-queries find their partner
    # first (AP 1). Keeping the query in its own ranking would give A 0.75 instead.
    result = qbe_map(EMB, ["A", "A", "B", "B"])
    assert result.ap.tolist() == pytest.approx([1 / 3, 1 / 3, 1, 1])
    assert result.map == pytest.approx(2 / 3)


def test_qbe_map_skips_labels_seen_once():
    result = qbe_map(EMB, ["A", "A", "B", "C"])
    assert result.n_queries == 2
    assert result.map == pytest.approx(1 / 3)


def test_qbs_map_hand_made():
    # Query "A" = (1, 1): x2, x3 tie (kept in index order) ahead of x0, x1 -> [0,0,1,1].
    # Query "B" = (1, 0): order x0, x2, x3, x1 -> [0,1,1,0].
    result = qbs_map(EMB, ["A", "A", "B", "B"], ["A", "B"], np.array([[1.0, 1.0], [1.0, 0.0]]))
    assert result.ap.tolist() == pytest.approx([(1 / 3 + 2 / 4) / 2, (1 / 2 + 2 / 3) / 2])
    assert result.map == pytest.approx(0.5)
