"""Person names without a model: an offline first/last-name dictionary, titles, and context.

A capitalised word is a name if it is in the dictionary and not also a common word. A word that is
both ("Rose", "Young", "Parkinson") is a name only next to a title or another dictionary name. Trailing digits are
ignored, since Synthea writes names as "Antonia30 Ruelas156". Text arrives folded (`normalise`), so
accented Latin names read as ASCII; capitals and letters of other scripts count as letters too.
A lower-case word is a name only with more evidence: a first name next to another dictionary name
("maria gonzalez") or a title or relation just before it ("dr okafor", "mother rose").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from privacy.deid.scrub.spans import Span
from privacy.deid.scrub.wordlists import wordlist


def _class(test: Callable[[str], bool], extra: str = "") -> str:
    """A regex character class of the Basic Multilingual Plane characters passing `test`, as ranges."""
    ranges: list[str] = []
    start = None
    for code in range(0x10001):
        inside = code < 0x10000 and test(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            end = code - 1
            ranges.append(chr(start) if start == end else f"{chr(start)}-{chr(end)}")
            start = None
    return "[" + "".join(ranges) + extra + "]"


_UP = _class(str.isupper)  # capitals of any script, A-Z among them
_LETTER = _class(str.isalpha, "'")
_WORD = _class(str.isalpha, "'\\-")
_TOKEN = re.compile(rf"\b{_UP}{_LETTER}*(?:-{_UP}{_LETTER}*)?\d*\b")
_TITLE = re.compile(
    rf"\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Sr|Rev|Nurse|NP|PA|RN)\.?\s+((?:{_UP}\.\s*)?{_UP}{_WORD}+\d*(?:\s+{_UP}{_WORD}+\d*){{0,2}})"
)
# "Name: Jane Doe", "seen by Jane Doe", "signed by": a label then up to three capitalised words.
_LABELLED = re.compile(
    r"(?i:\b(?:patient\s+name|name|pt|patient|seen\s+by|signed\s+by|attending|referred\s+by|contact|"
    r"spouse|mother|father|son|daughter|wife|husband|sister|brother|guardian|emergency\s+contact)\s*[:,]\s*)"
    rf"((?:{_UP}{_WORD}+\d*)(?:\s+(?:{_UP}\.\s*)?{_UP}{_WORD}+\d*){{0,2}})"
)
# A relative, contact or the patient named without punctuation: "Mother Mark and father Jose".
_RELATION = re.compile(
    r"(?i:\b(?:mother|father|son|daughter|wife|husband|sister|brother|spouse|partner|guardian|proxy|"
    rf"contact|friend|caregiver|pt|patient|referring|summary\s+for)\s+)({_UP}{_WORD}+\d*)"
)
_LOWER = re.compile(r"\b[a-z][a-z']+(?:-[a-z][a-z']+)*\b")
# What makes a lower-case dictionary name a name: a title or a relation right before it.
_LOWER_CUE = re.compile(
    r"\b(?:dr|mr|mrs|ms|mx|miss|prof|rev|pt|patient|name|seen\s+by|signed\s+by|referred\s+by|attending|"
    r"contact|spouse|mother|father|son|daughter|wife|husband|sister|brother|partner|guardian|friend|caregiver)"
    r"\.?\s*[:,]?\s*$",
    re.IGNORECASE,
)
# After "dr" any uncommon word is a surname; "ms" and "mr" are also multiple sclerosis and mitral
# regurgitation, so after those only a dictionary name counts.
_AFTER_DOCTOR = re.compile(r"(?i:\b(?:dr|prof)\.?\s+)([a-z][a-z'\-]{2,})\b")
_INITIAL = re.compile(r"\s+[A-Z]\.?\s+")
_SCORE_STRONG, _SCORE_WEAK = 0.85, 0.7


@cache
def _vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    names = wordlist("first_names") | wordlist("last_names")
    ambiguous = names & _common()
    return names, ambiguous


@cache
def _common() -> frozenset[str]:
    return wordlist("common_words") | wordlist("clinical_words")


def _base(token: str) -> str:
    return token.rstrip("0123456789").lower()


def _is_name_token(token: str, names: frozenset[str]) -> bool:
    if token.isupper() and len(token) < 4:  # ED, AL, BP: abbreviations far more often than names
        return False
    base = _base(token)
    return len(base) > 1 and (base in names or all(part in names for part in base.split("-") if part))


def dictionary_names(text: str) -> list[Span]:
    names, ambiguous = _vocabulary()
    tokens = [(m, _is_name_token(m.group(), names)) for m in _TOKEN.finditer(text)]
    strong = [hit and (_base(m.group()) not in ambiguous or m.group()[-1].isdigit()) for m, hit in tokens]
    spans = []
    for i, (m, hit) in enumerate(tokens):
        if not hit:
            continue
        if strong[i]:
            spans.append(Span(m.start(), m.end(), "NAME", _SCORE_STRONG))
            continue
        # Two dictionary words in a row ("Rose Young") read as a full name even if both are common words.
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(tokens) and tokens[j][1]]
        if any(_adjacent(text, tokens[min(i, j)][0], tokens[max(i, j)][0]) for j in neighbours):
            spans.append(Span(m.start(), m.end(), "NAME", _SCORE_WEAK))
    return spans + _surnames(text, tokens, strong)


def _surnames(text: str, tokens: list[tuple[re.Match[str], bool]], strong: list[bool]) -> list[Span]:
    """A capitalised word right after a known first name is a surname the dictionary lacks
    ("Frederick Lindqvist"), unless it is a common or clinical word ("Frederick Hospital")."""
    first, common = wordlist("first_names"), _common()
    spans = []
    for (m, _), (nxt, hit), is_strong in zip(tokens, tokens[1:], strong, strict=False):
        word = nxt.group()
        if (
            is_strong
            and not hit
            and _base(m.group()) in first
            and text[m.end() : nxt.start()] == " "
            and _base(word) not in common
            and not word.isupper()
        ):
            spans.append(Span(nxt.start(), nxt.end(), "NAME", _SCORE_WEAK))
    return spans


def _adjacent(text: str, left: re.Match[str], right: re.Match[str]) -> bool:
    between = text[left.end() : right.start()]
    return between in (" ", ", ", ". ") or bool(_INITIAL.fullmatch(between))


def context_names(text: str) -> list[Span]:
    """Capitalised words after a title ("Dr. Okafor") or a label ("Name: ..."), in any dictionary."""
    spans = [Span(*m.span(1), "NAME", 0.9) for m in _TITLE.finditer(text)]
    names, ambiguous = _vocabulary()
    for m in _LABELLED.finditer(text):
        # After a label the first word must still look like a name: "Patient: Denies pain" is not one.
        first = m.group(1).split()[0]
        if _base(first) in names or first[-1].isdigit():
            spans.append(Span(*m.span(1), "NAME", 0.8))
    spans += [Span(*m.span(1), "NAME", 0.8) for m in _RELATION.finditer(text) if _base(m.group(1)) in names]
    return spans


def middle_initials(text: str, spans: list[Span]) -> list[Span]:
    """ "Gabriella P. Castro": the initial between two name words is part of the name."""
    ordered = sorted(spans)
    return [
        Span(a.end, b.start, "NAME", _SCORE_WEAK)
        for a, b in zip(ordered, ordered[1:], strict=False)
        if 0 < b.start - a.end <= 5 and _INITIAL.fullmatch(text, a.end, b.start)
    ]


def lower_case_names(text: str) -> list[Span]:
    """ "seen with maria gonzalez", "called dr okafor": lower-case names need evidence (module doc)."""
    names, ambiguous = _vocabulary()
    doctors = list(_AFTER_DOCTOR.finditer(text))
    if not doctors and not _clear_names().intersection(_LOWER.findall(text)):
        return []  # the common case, decided at C speed
    common = _common()
    spans = [Span(*m.span(1), "NAME", _SCORE_WEAK) for m in doctors if m.group(1).lower() not in common]
    first = wordlist("first_names")
    tokens = list(_LOWER.finditer(text))
    clear = [len(m.group()) > 2 and m.group() in names and m.group() not in ambiguous for m in tokens]
    for i, m in enumerate(tokens):
        if not clear[i]:
            continue
        pair = [
            j
            for j in (i - 1, i + 1)
            if 0 <= j < len(tokens)
            and clear[j]
            and text[tokens[min(i, j)].end() : tokens[max(i, j)].start()] == " "
            and tokens[min(i, j)].group() in first
        ]
        if pair or _LOWER_CUE.search(text, max(0, m.start() - 24), m.start()):
            spans.append(Span(m.start(), m.end(), "NAME", _SCORE_WEAK))
    return spans


@cache
def _clear_names() -> frozenset[str]:
    """Dictionary names that are not also common or clinical words, at least three letters long."""
    names, ambiguous = _vocabulary()
    return frozenset(n for n in names - ambiguous if len(n) > 2)


def find_names(text: str) -> list[Span]:
    spans = dictionary_names(text) + context_names(text) + lower_case_names(text)
    return spans + middle_initials(text, spans)
