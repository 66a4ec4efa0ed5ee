"""Class vocabularies of the real datasets: label index -> character.

Labels stay each dataset's own class index (0-9 for MNIST, 0-61 for NIST);
``label_name`` is the character and ``script`` the writing system, so a study
can map classes across datasets by (label_name, script). The characters match
the global charsets (latin_digits '0'-'9', arabic_digits U+0660-0669,
kannada_digits U+0CE6-0CEF, latin_letters A-Z a-z, amharic 11 x 7).
"""

from __future__ import annotations

import string

LATIN_DIGITS = list(string.digits)
ARABIC_DIGITS = [chr(0x0660 + i) for i in range(10)]
KANNADA_DIGITS = [chr(0x0CE6 + i) for i in range(10)]
LATIN_LETTERS = list(string.ascii_uppercase + string.ascii_lowercase)
# NIST SD19 / EMNIST byclass order: digits, A-Z, a-z.
NIST62 = LATIN_DIGITS + LATIN_LETTERS

# Amharic 77 classes of the multiscript paper (its Table 2): 11 consonant rows
# (l, s, sh, b, ch, glottal, k, x, d, p', ts') by 7 vowel orders (ä u i a e ə o).
# In Unicode each Ethiopic consonant's orders are consecutive code points.
AMHARIC_ROW_BASES = [
    0x1208,  # ለ l
    0x1230,  # ሰ s
    0x1238,  # ሸ sh
    0x1260,  # በ b
    0x1278,  # ቸ ch
    0x12A0,  # አ glottal stop
    0x12A8,  # ከ k
    0x12B8,  # ኸ x
    0x12F0,  # ደ d
    0x1330,  # ጰ p'
    0x1338,  # ጸ ts'
]
AMHARIC_ROWS, AMHARIC_COLS = 11, 7
AMHARIC77 = [chr(base + col) for base in AMHARIC_ROW_BASES for col in range(AMHARIC_COLS)]


def script_of(char: str) -> str:
    """The script name used in meta.csv for one character."""
    code = ord(char)
    if 0x0660 <= code <= 0x0669:
        return "arabic"
    if 0x0C80 <= code <= 0x0CFF:
        return "kannada"
    if 0x1200 <= code <= 0x139F:
        return "ethiopic"
    return "latin"
