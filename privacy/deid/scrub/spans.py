"""The typed span: the only thing that passes from recognizers to the operator that rewrites text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Entity types, each mapped to the HIPAA Safe Harbor identifier (45 CFR 164.514(b)(2)(i)) it is.
SAFE_HARBOR = {
    "NAME": "A names",
    "ADDRESS": "B geographic subdivisions",
    "LOCATION": "B geographic subdivisions",
    "ZIP": "B geographic subdivisions",
    "DATE": "C dates",
    "AGE": "C ages over 89",
    "PHONE": "D telephone numbers",
    "FAX": "E fax numbers",
    "EMAIL": "F email addresses",
    "SSN": "G social security numbers",
    "MRN": "H medical record numbers",
    "HEALTH_PLAN": "I health plan beneficiary numbers",
    "ACCOUNT": "J account numbers",
    "LICENSE": "K certificate/license numbers",
    "VEHICLE": "L vehicle identifiers",
    "DEVICE": "M device identifiers",
    "URL": "N URLs",
    "IP": "O IP addresses",
    "BIOMETRIC": "P biometric identifiers",
    "PHOTO": "Q full-face photographs",
    "ID": "R other unique identifying numbers",
}


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    entity_type: str
    score: float = 1.0


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans become one; it takes the type of the highest-scoring (then longest) part, so
    a phone number inside a labelled fax line stays a fax number."""
    merged: list[Span] = []
    for s in sorted(spans):
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            best = max((last, s), key=lambda x: (x.score, x.end - x.start))
            merged[-1] = Span(last.start, max(last.end, s.end), best.entity_type, best.score)
        else:
            merged.append(s)
    return merged


def replace_spans(text: str, spans: Iterable[Span], replacement: dict[str, str] | None = None) -> str:
    """`text` with each (merged) span replaced by `[TYPE]`, or by `replacement[TYPE]` when given."""
    replacement = replacement or {}
    out, at = [], 0
    for s in merge(spans):
        out.append(text[at : s.start])
        out.append(replacement.get(s.entity_type, f"[{s.entity_type}]"))
        at = s.end
    out.append(text[at:])
    return "".join(out)
