"""Unicode normalisation applied to every string before a pattern, a vocabulary or a value set sees it.

Patterns are written for ASCII. Without this step, fullwidth digits ("０３６０１") slip past a ZIP rule
while still reading as a restricted ZIP code, and a zero-width space or soft hyphen hides a name from
a word match. NFKC folds compatibility forms (fullwidth, superscript, ligatures) into their plain
characters (https://unicode.org/reports/tr15/); format characters (category Cf: zero-width spaces and
joiners, soft hyphens, bidirectional controls) are then removed, since they are invisible and carry
no meaning a pattern could need. Digits of other scripts (Arabic-Indic, Devanagari) survive NFKC: the
patterns use [0-9], not \\d, so such a value simply fails to match and is dropped.
"""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """`text` in NFKC with every format character (Unicode category Cf) removed."""
    if text.isascii():  # the common case: NFKC leaves ASCII unchanged and ASCII holds no Cf character
        return text
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
