"""Class vocabularies of the real datasets, taken from :mod:`hwbench.charsets`.

Labels stay each dataset's own class index (0-9 for MNIST, 0-61 for NIST in the
order digits, A-Z, a-z); ``label_name`` is the character and ``script`` its
script from the shared charsets, so a study maps classes across datasets by
(label_name, script), or to global ids with ``charsets.by_name``.
"""

from __future__ import annotations

from hwbench import charsets

LATIN_DIGITS = list(charsets.CHARSETS["latin_digits"])
ARABIC_DIGITS = list(charsets.CHARSETS["arabic_digits"])
KANNADA_DIGITS = list(charsets.CHARSETS["kannada_digits"])
LATIN_LETTERS = list(charsets.CHARSETS["latin_letters"])
# NIST SD19 / EMNIST byclass order: digits, A-Z, a-z.
NIST62 = LATIN_DIGITS + LATIN_LETTERS
# The multiscript paper's 77 Amharic classes, 11 consonant rows x 7 vowel orders.
AMHARIC77 = list(charsets.CHARSETS["amharic"])


def script_of(char: str) -> str:
    """The script of a character in the shared charsets; 'latin' for other symbols
    (DeepWriting's punctuation, EMNIST's merged letters)."""
    try:
        return charsets.by_name(char).script
    except ValueError:
        return "latin"
