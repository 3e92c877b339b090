"""One folding pass before any recognizer runs, so that spelling tricks cannot hide an identifier.

Text is matched in a folded copy: Unicode format characters (category Cf: zero-width spaces and
joiners, soft hyphens, bidi marks) are dropped, every character is brought to its NFKD compatibility
form with combining marks removed ("José Muñoz" -> "Jose Munoz", fullwidth "０７８" -> "078"), other
scripts' decimal digits become ASCII, and a small table maps the Cyrillic and Greek letters that look
like Latin ones (Unicode's confusables, the ones seen in practice) to those letters. Each folded
character remembers which original character it came from, so a span found in the folded copy
replaces exactly the original characters, hidden ones included.

ASCII text, nearly all clinical text, is returned as it is: the pass costs one `str.isascii` call.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Lookalikes NFKD leaves alone: Cyrillic and Greek letters drawn like Latin ones, letters with a
# stroke rather than a combining mark, ligatures NFKD keeps, and the dashes and quotes that stand for
# ASCII punctuation in identifiers ("078‐05‐1120", "O’Brien").
_CONFUSABLES = {
    **dict(zip("АВЕІЈКМНОРСТУХЅ", "ABEIJKMHOPCTYXS", strict=True)),  # Cyrillic capitals
    **dict(zip("аеіјорсухѕһӏԁԛԝь", "aeijopcyxshldqwb", strict=True)),  # Cyrillic small letters
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),  # Greek capitals
    **dict(zip("αικνορτυχϲ", "aikvoptuxc", strict=True)),  # Greek small letters
    **dict(zip("łŁøØđĐıħĦŧŦƀɡ", "lLoOdDihHtTbg", strict=True)),
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "þ": "th",
    "Þ": "Th",
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\uff07", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\uff02", '"'),
}
_DROPPED = frozenset({"Cf", "Mn", "Me"})
_FOLDED: dict[str, str] = {}


def fold_char(ch: str) -> str:
    """What one character becomes in the folded copy ("" for a character that is dropped)."""
    done = _FOLDED.get(ch)
    if done is None:
        done = _fold(ch)
        if len(_FOLDED) < 65_536:  # bounded: adversarial input cannot grow it without limit
            _FOLDED[ch] = done
    return done


def _fold(ch: str) -> str:
    if ch in _CONFUSABLES:
        return _CONFUSABLES[ch]
    if unicodedata.category(ch) in _DROPPED:
        return ""
    if ch.isdecimal():
        return str(unicodedata.decimal(ch))
    parts = (_CONFUSABLES.get(c, c) for c in unicodedata.normalize("NFKD", ch))
    return "".join(c for c in parts if unicodedata.category(c) not in _DROPPED)


def fold_text(text: str) -> str:
    """The folded copy alone, for matching (e.g. a patient's own names before they are compiled)."""
    return text if text.isascii() else "".join(fold_char(ch) for ch in text)


@dataclass(frozen=True)
class Folded:
    """The folded copy of a text and, for each folded character, the index of its original one."""

    text: str
    original: str
    origin: tuple[int, ...] | None = None  # None: the text was ASCII and is its own folded copy

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original characters behind folded [start, end): dropped characters inside it and
        right after it (a zero-width space, a combining accent) are covered too."""
        if self.origin is None:
            return start, end
        origin = self.origin
        if end <= start:
            return origin[start], origin[start]
        return origin[start], max(origin[end], origin[end - 1] + 1)


def fold(text: str) -> Folded:
    if text.isascii():
        return Folded(text, text)
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = ch if ch < "\x80" else fold_char(ch)
        chars.append(folded)
        origin.extend([i] * len(folded))
    origin.append(len(text))
    return Folded("".join(chars), text, tuple(origin))
