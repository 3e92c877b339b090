"""Pattern recognizers: one regular expression per identifier shape, each yielding typed spans.

Recall comes first (a missed identifier is a leak, a false positive only costs a word), so shapes are
broad and rely on labels ("MRN:", "fax") where a bare shape would be ambiguous, as in the ZIP code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from privacy.deid.scrub.spans import Span
from privacy.deid.scrub.wordlists import wordlist

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
# US states, DC, territories and military "states", as two-letter postal codes.
_STATE = (
    "(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|"
    "NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|AS|GU|MP|PR|VI|AA|AE|AP|FM|MH|PW)"
)
_CAP_WORD = r"[A-Z][A-Za-z'\-]*"


@dataclass(frozen=True)
class Recognizer:
    entity_type: str
    pattern: re.Pattern[str]
    score: float = 0.9
    group: int | str = 0  # the regex group that is the identifier (the rest is context, e.g. a label)
    classify: Callable[[re.Match[str]], str] | None = None  # a type that depends on the match

    def find(self, text: str) -> Iterator[Span]:
        for m in self.pattern.finditer(text):
            start, end = m.span(self.group)
            if start < end:
                kind = self.classify(m) if self.classify else self.entity_type
                yield Span(start, end, kind, self.score)


def _phone_or_fax(m: re.Match[str]) -> str:
    # A number labelled as a fax shortly before it is a fax number (Safe Harbor lists them apart).
    before = m.string[max(0, m.start() - 16) : m.start()].lower()
    return "FAX" if "fax" in before else "PHONE"


_LABELS = {
    "MRN": r"MRN|medical\s+record(?:\s+(?:number|no\.?|#))?|record\s*(?:#|no\.?|number)|chart\s*(?:#|no\.?|number)|patient\s+id",
    "HEALTH_PLAN": r"member\s*(?:id|#|no\.?|number)|policy\s*(?:id|#|no\.?|number)|(?:health\s+)?plan\s*(?:id|#|no\.?|number)|beneficiary\s*(?:id|#|no\.?|number)?|insurance\s*(?:id|#|no\.?|number)|group\s*(?:#|no\.?|number)|medicaid\s*(?:id|#)?|medicare\s*(?:id|#)?",
    "ACCOUNT": r"acct\.?|account\s*(?:#|no\.?|number)?|billing\s*(?:#|no\.?|number|id)",
    "LICENSE": r"licen[cs]e\s*(?:#|no\.?|number)?|lic\.?\s*#?|(?-i:DL)\s*#?|driver'?s\s+licen[cs]e(?:\s*(?:#|no\.?|number))?|passport\s*(?:#|no\.?|number)?|certificate\s*(?:#|no\.?|number)?|(?-i:NPI|DEA)\s*(?:#|no\.?|number)?",
    "VEHICLE": r"(?:license\s+)?plate\s*(?:#|no\.?|number)?|(?-i:VIN)|vehicle\s*(?:id|#|no\.?|number)?",
    "DEVICE": r"serial\s*(?:#|no\.?|number)?|S/N|device\s*(?:id|#|no\.?|number|identifier)?|(?-i:UDI)|implant\s*(?:id|#)",
    "SSN": r"SSN|social\s+security(?:\s+(?:number|no\.?|#))?|SS#",
}


def _labelled() -> Recognizer:
    alternatives = "|".join(f"(?P<{kind}>{label})" for kind, label in _LABELS.items())
    pattern = re.compile(
        rf"(?i:\b(?:{alternatives}))\s*(?:is|was)?\s*[:#=\-]?\s*(?P<value>(?=[A-Za-z0-9\-]*\d)[A-Za-z0-9][A-Za-z0-9\-]{{2,}}[A-Za-z0-9])"
    )
    return Recognizer(
        "MRN", pattern, 0.95, group="value", classify=lambda m: next(k for k in _LABELS if m.group(k))
    )


@cache
def recognizers() -> tuple[Recognizer, ...]:
    suffixes = "|".join(sorted((re.escape(s) for s in wordlist("street_suffixes")), key=len, reverse=True))
    return (
        Recognizer("EMAIL", re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b"), 1.0),
        Recognizer(
            "URL",
            re.compile(
                r"\b(?:https?://|ftp://|www\.)[^\s<>\"')\]]+"
                r"|\b[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.(?:com|org|net|edu|gov|io|info|biz|us|co|me|health)\b(?:/[^\s<>\"')\]]*)?"
            ),
            0.9,
        ),
        Recognizer(
            "IP",
            re.compile(
                r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\d|\.\d)"
                r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])"
                r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?(?![\w:])(?<!::)"
            ),
            0.95,
        ),
        Recognizer("SSN", re.compile(r"(?<![\d\-])\d{3}[- ]\d{2}[- ]\d{4}(?![\d\-])"), 0.95),
        Recognizer(
            "PHONE",
            re.compile(
                r"(?<![\w\-])(?:(?:\+?1|001)[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}"
                r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?(?![\w\-])"
                r"|(?<![\w\-])\+?1?\d{10}(?:x\d{1,6})?(?![\w\-])"
            ),
            0.9,
            classify=_phone_or_fax,
        ),
        _labelled(),
        # Licence plates have one internal space or none ("VHT 683", "7XKB219"): only with a label.
        Recognizer(
            "VEHICLE",
            re.compile(
                r"(?i:\b(?:licen[cs]e\s+)?plate\s*(?:#|no\.?|number)?\s*(?:is)?\s*[:#]?\s*)"
                r"(?P<plate>(?=[A-Z0-9 \-\u2022\u00b7]*\d)[A-Z0-9]{1,4}[ \-\u2022\u00b7]?[A-Z0-9]{1,7})\b"
            ),
            0.95,
            group="plate",
        ),
        Recognizer(
            "ID",
            re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
            0.95,
        ),
        Recognizer(
            "VEHICLE",
            re.compile(r"\b(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-Z])[A-HJ-NPR-Z0-9]{17}\b"),
            0.8,
        ),
        # Codes mixing capitals and at least three digits (licence plates, passport and chart numbers).
        Recognizer(
            "ID",
            re.compile(
                r"\b(?=[A-Z0-9\-]*\d[A-Z0-9\-]*\d[A-Z0-9\-]*\d)(?=[A-Z0-9\-]*[A-Z])[A-Z0-9][A-Z0-9\-]{3,}[A-Z0-9]\b"
            ),
            0.6,
        ),
        Recognizer("ID", re.compile(r"(?<![\w.\-])\d{7,}(?![\w\-]|\.\d)"), 0.6),
        Recognizer(
            "DATE",
            re.compile(
                r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?\b"
                r"|\b\d{1,2}[/\-.]\d{1,2}[/\-.](?:\d{4}|\d{2})\b"
                r"|\b\d{4}/\d{1,2}/\d{1,2}\b"
                rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b"
                rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b"
                rf"|\b{_MONTH},?\s+\d{{4}}\b"
                r"|\b\d{1,2}/\d{4}\b"
            ),
            0.85,
        ),
        Recognizer("AGE", re.compile(r"\b(?:9\d|1[0-4]\d)(?=[\s\-]*(?:years?\b|yrs?\b|y/?o\b|yo\b))"), 0.9),
        Recognizer("AGE", re.compile(r"(?i:\baged?\s*:?\s*)(?P<age>9\d|1[0-4]\d)\b"), 0.9, group="age"),
        Recognizer(
            "ADDRESS",
            re.compile(
                rf"\b\d{{1,6}}[A-Z]?\s+(?:[NSEW]\.?\s+)?(?:{_CAP_WORD}\s+){{0,3}}{_CAP_WORD}\s+(?i:{suffixes})\b\.?"
                r"(?:,?\s*(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|#)\s*[A-Za-z0-9\-]+)?"
                r"|(?i:\bP\.?\s?O\.?\s+Box\s+\d+)"
                r"|\b(?:Apt\.?|Apartment|Suite|Ste\.?)\s*#?\s*\d+[A-Za-z]?\b"
                r"|\b(?:USNS|USNV|USS|USCGC)\s+[A-Z][a-z]+\b|\bPSC\s+\d{3,5},\s+Box\s+\d{3,5}\b"
                r"|\bUnit\s+\d{3,5}\s+Box\s+\d{3,5}\b|\b[AFD]PO\s+A[AEP]\b"
            ),
            0.85,
        ),
        # City, ST 12345: the city, state and ZIP of an address line.
        Recognizer(
            "LOCATION",
            re.compile(
                rf"(?:\b(?:{_CAP_WORD}\s+){{0,2}}{_CAP_WORD},?\s+)?\b{_STATE}\s+\d{{5}}(?:-\d{{4}})?\b"
            ),
            0.9,
        ),
        Recognizer(
            "LOCATION",
            re.compile(
                r"(?i:\b(?:lives|living|resides|residing|moved|born|located|relocated)\s+(?:in|at|to|from)\s+(?:the\s+)?)"
                rf"(?P<place>{_CAP_WORD}(?:\s+{_CAP_WORD}){{0,2}})"
            ),
            0.7,
            group="place",
        ),
        Recognizer(
            "LOCATION",
            re.compile(r"\b(?:North|South|East|West|New|Lake|Port|Mount|Fort|Saint|St\.)\s+[A-Z][a-z]+\b"),
            0.6,
        ),
        Recognizer(
            "ZIP",
            re.compile(r"(?i:\bzip(?:\s*code)?\s*(?:is)?\s*[:#]?\s*)(?P<zip>\d{5}(?:-\d{4})?)\b"),
            0.9,
            group="zip",
        ),
        Recognizer("ZIP", re.compile(r"\b\d{5}-\d{4}\b"), 0.9),
    )


def find_patterns(text: str) -> list[Span]:
    return [span for r in recognizers() for span in r.find(text)]
