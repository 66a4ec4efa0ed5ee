"""The class vocabulary shared by every study.

Five charsets in a fixed order with fixed global label ids, so a label means the same
character whatever subset of charsets a config enables:

=============== ======= ===================================================
charset         ids     characters
=============== ======= ===================================================
latin_digits    0-9     0-9
arabic_digits   10-19   U+0660-U+0669 (Arabic-Indic digits)
kannada_digits  20-29   U+0CE6-U+0CEF
latin_letters   30-81   A-Z then a-z
amharic         82-158  77 Ethiopic syllables: 11 consonant rows x 7 orders
=============== ======= ===================================================

The Amharic set is Table 2 of the multi-script MTL paper: rows
ለ ሰ ሸ በ ቸ አ ከ ኸ ደ ጰ ጸ, each with its seven vowel orders (the row's base code
point + 0..6), row-major, so within the charset ``row = k // 7`` and
``column = k % 7``.

Every class has a plain-ASCII ``word``: digits of every script are "zero".."nine",
Latin letters are themselves, Amharic syllables are transliterated as consonant +
vowel (see :data:`AMHARIC_CONSONANTS` and :data:`AMHARIC_VOWELS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Base code point of each Amharic row (first order) and its ASCII consonant.
# The glottal row (አ) has no consonant letter: its syllables are the bare vowels.
# Ejective p' and ts' are written p and ts: their plain counterparts are not in the set,
# so the names stay unique without marking ejectives.
AMHARIC_ROWS = (
    (0x1208, "l"),  # ለ
    (0x1230, "s"),  # ሰ
    (0x1238, "sh"),  # ሸ
    (0x1260, "b"),  # በ
    (0x1278, "ch"),  # ቸ
    (0x12A0, ""),  # አ (glottal stop)
    (0x12A8, "k"),  # ከ
    (0x12B8, "kh"),  # ኸ
    (0x12F0, "d"),  # ደ
    (0x1330, "p"),  # ጰ (ejective p')
    (0x1338, "ts"),  # ጸ (ejective ts')
)
AMHARIC_CONSONANTS = tuple(c for _, c in AMHARIC_ROWS)
# The seven orders: 1st ä/e, 2nd u, 3rd i, 4th a, 5th ē, 6th ɨ (or no vowel), 7th o.
AMHARIC_VOWELS = ("e", "u", "i", "a", "ee", "ih", "o")


def _amharic() -> str:
    return "".join(chr(base + order) for base, _ in AMHARIC_ROWS for order in range(7))


# Fixed order: the global label id is the position in the concatenation.
CHARSETS: dict[str, str] = {
    "latin_digits": "0123456789",
    "arabic_digits": "".join(chr(c) for c in range(0x0660, 0x066A)),
    "kannada_digits": "".join(chr(c) for c in range(0x0CE6, 0x0CF0)),
    "latin_letters": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "amharic": _amharic(),
}
CHARSET_NAMES = tuple(CHARSETS)
SCRIPT_OF_CHARSET = {
    "latin_digits": "latin",
    "arabic_digits": "arabic",
    "kannada_digits": "kannada",
    "latin_letters": "latin",
    "amharic": "ethiopic",
}
CHARSET_OFFSET: dict[str, int] = {}
_offset = 0
for _name, _chars in CHARSETS.items():
    CHARSET_OFFSET[_name] = _offset
    _offset += len(_chars)
NUM_CLASSES = _offset  # 159


@dataclass(frozen=True)
class CharClass:
    """One class of the shared vocabulary."""

    label: int  # global label id
    label_name: str  # the character itself
    script: str  # latin, arabic, kannada, ethiopic
    charset: str
    index: int  # position inside the charset
    word: str  # plain-ASCII name

    @property
    def row(self) -> int:
        """Row in the charset's grid: the consonant row (``index // 7``) for Amharic, else 0."""
        return self.index // 7 if self.charset == "amharic" else 0

    @property
    def column(self) -> int:
        """Column in the charset's grid: the vowel order (``index % 7``) for Amharic, else index."""
        return self.index % 7 if self.charset == "amharic" else self.index


def _word(charset: str, index: int, char: str) -> str:
    if charset.endswith("_digits"):
        return DIGIT_WORDS[index]
    if charset == "latin_letters":
        return char
    return AMHARIC_CONSONANTS[index // 7] + AMHARIC_VOWELS[index % 7]


def _build() -> list[CharClass]:
    out = []
    for charset, chars in CHARSETS.items():
        for index, char in enumerate(chars):
            out.append(
                CharClass(
                    label=CHARSET_OFFSET[charset] + index,
                    label_name=char,
                    script=SCRIPT_OF_CHARSET[charset],
                    charset=charset,
                    index=index,
                    word=_word(charset, index, char),
                )
            )
    return out


ALL_CLASSES: tuple[CharClass, ...] = tuple(_build())
_BY_NAME = {c.label_name: c for c in ALL_CLASSES}


def check_charsets(names) -> list[str]:
    """Return ``names`` as a list, raising a clear error for an unknown charset."""
    names = list(names)
    unknown = [n for n in names if n not in CHARSETS]
    if unknown:
        raise ValueError(f"unknown charset(s) {unknown}; choose from {list(CHARSET_NAMES)}")
    return names


def classes(charset: str | None = None) -> list[CharClass]:
    """The classes of one charset (all 159 classes with ``None``), in label order."""
    if charset is None:
        return list(ALL_CLASSES)
    check_charsets([charset])
    start = CHARSET_OFFSET[charset]
    return list(ALL_CLASSES[start : start + len(CHARSETS[charset])])


def by_label(label: int) -> CharClass:
    """The class with global label id ``label``."""
    if not 0 <= int(label) < NUM_CLASSES:
        raise ValueError(f"label {label} is outside 0..{NUM_CLASSES - 1}")
    return ALL_CLASSES[int(label)]


def by_name(label_name: str) -> CharClass:
    """The class whose character is ``label_name``."""
    try:
        return _BY_NAME[label_name]
    except KeyError:
        raise ValueError(
            f"{label_name!r} (U+{ord(label_name[0]):04X}...) is not in any charset"
            if label_name
            else "empty label_name"
        ) from None


def word(label_name: str) -> str:
    """The plain-ASCII word of a character: "three" for 3, ٣ and ೩; "A"; "le" for ለ."""
    return by_name(label_name).word


def charset_of(label: int) -> str:
    """The charset a global label id belongs to."""
    return by_label(label).charset


def label_range(charset: str) -> range:
    """Global label ids of a charset."""
    check_charsets([charset])
    start = CHARSET_OFFSET[charset]
    return range(start, start + len(CHARSETS[charset]))


def charset_mask(meta: pd.DataFrame, charset: str) -> np.ndarray:
    """Boolean array: which rows of ``meta`` (column ``label``) belong to ``charset``."""
    ids = label_range(charset)
    labels = meta["label"].to_numpy()
    return (labels >= ids.start) & (labels < ids.stop)


def local_index(labels, charset: str) -> np.ndarray:
    """Global label ids -> 0-based class index inside ``charset`` (for per-charset heads)."""
    ids = label_range(charset)
    labels = np.asarray(labels)
    if labels.size and ((labels < ids.start) | (labels >= ids.stop)).any():
        raise ValueError(f"labels outside {charset} ({ids.start}..{ids.stop - 1})")
    return labels - ids.start


def table() -> pd.DataFrame:
    """All classes as a frame: label, label_name, codepoint, script, charset, index, word."""
    return pd.DataFrame(
        {
            "label": [c.label for c in ALL_CLASSES],
            "label_name": [c.label_name for c in ALL_CLASSES],
            "codepoint": [f"U+{ord(c.label_name):04X}" for c in ALL_CLASSES],
            "script": [c.script for c in ALL_CLASSES],
            "charset": [c.charset for c in ALL_CLASSES],
            "index": [c.index for c in ALL_CLASSES],
            "word": [c.word for c in ALL_CLASSES],
        }
    )
