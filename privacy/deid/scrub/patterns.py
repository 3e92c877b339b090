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
# Bounded: a word has at most 40 letters, so a long run of letters and hyphens is not rescanned from
# every position inside it (quadratic time on adversarial text).
_CAP_WORD = r"[A-Z][A-Za-z'\-]{0,40}"
# Month names in any case, for the dense forms ("03-MAR-1931", "3mar1931") where a year is required.
_ANY_CASE_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
# 90 to 149 in words: "ninety", "ninety-three", "a hundred and two", "one hundred ten".
_UNITS = r"one|two|three|four|five|six|seven|eight|nine"
_TEENS = r"ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_TENS = r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_AGE_WORDS = (
    rf"(?i:ninety(?:[\s\-]+(?:{_UNITS}))?"
    rf"|(?:a|one)[\s\-]+hundred(?:[\s\-]+(?:and[\s\-]+)?(?:(?:{_TENS})(?:[\s\-]+(?:{_UNITS}))?|{_TEENS}|{_UNITS}))?)"
)
_AGE_UNIT = r"(?:[\s\-]*(?:(?i:years?|yrs?)\b|y\s?/\s?o\b|y\.\s?o\b|yo[MFmf]?\b))"
# Spelled-out e-mail addresses: "jane dot roe at gmail dot com", "jroe(at)example(dot)org".
_DOT = r"(?:\s*[\[({]\s*(?i:dot)\s*[\])}]\s*|\s+(?i:dot)\s+|\s?\.\s?)"
_AT = r"(?:\s*[\[({]\s*(?i:at)\s*[\])}]\s*|\s+(?i:at)\s+|\s*@\s*)"
_TLD = r"(?i:com|org|net|edu|gov|mil|int|io|info|biz|us|co|me|health|uk|ca|de|fr|es|mx|br|in|au)"


@dataclass(frozen=True)
class Recognizer:
    entity_type: str
    pattern: re.Pattern[str]
    score: float = 0.9
    group: int | str = 0  # the regex group that is the identifier (the rest is context, e.g. a label)
    classify: Callable[[re.Match[str]], str] | None = None  # a type that depends on the match
    accept: Callable[[re.Match[str]], bool] | None = None  # context a regex cannot express

    def find(self, text: str) -> Iterator[Span]:
        for m in self.pattern.finditer(text):
            start, end = m.span(self.group)
            if start < end and (self.accept is None or self.accept(m)):
                kind = self.classify(m) if self.classify else self.entity_type
                yield Span(start, end, kind, self.score)


class SpelledEmail(Recognizer):
    """ "jane dot roe at gmail dot com": `pattern` finds the part from "at" on (rare, so cheap to look
    for); the local part is then read backwards from there, instead of trying every word in the text."""

    _LOCAL = re.compile(rf"\b[A-Za-z0-9_%+\-]+(?:{_DOT}[A-Za-z0-9_%+\-]+)*$")

    def find(self, text: str) -> Iterator[Span]:
        for m in self.pattern.finditer(text):
            local = self._LOCAL.search(text, max(0, m.start() - 64), m.start())
            if local:
                yield Span(local.start(), m.end(), self.entity_type, self.score)


def _phone_or_fax(m: re.Match[str]) -> str:
    # A number labelled as a fax shortly before it is a fax number (Safe Harbor lists them apart).
    before = m.string[max(0, m.start() - 16) : m.start()].lower()
    return "FAX" if "fax" in before else "PHONE"


def _before(m: re.Match[str], width: int) -> str:
    return m.string[max(0, m.start() - width) : m.start()].lower()


_TEMPERATURE = re.compile(r"(?:\btemp\w*|\bt|\btmax|\bfebrile|\bfever|\bpyrexia)\W{0,3}$")


def _not_a_temperature(m: re.Match[str]) -> bool:
    """ "93F" is a 93-year-old woman, but "T 99F" is a temperature."""
    after = m.string[m.end() : m.end() + 2]
    return not (_TEMPERATURE.search(_before(m, 16)) or after.startswith(("°", "ahr")))


_DATE_CUE = re.compile(
    r"\b(?:on|since|from|until|till|thru|through|by|dated?|seen|admit\w*|discharg\w*|visit|dos|dob|due|"
    r"scheduled|last|next|as\s+of|effective|born|died|onset|start\w*|stop\w*|surgery|appt|appointment)\W{0,3}$"
)
_SCALE = re.compile(
    r"\b(?:pain|strength|murmur|grade|score|gcs|apgar|power|reflex\w*|take|tab\w*|cup)\W{0,3}$"
)


def _month_day(m: re.Match[str]) -> bool:
    """ "3/14" is a date; "5/5 strength", "pain 3/10", "1/2 tablet" and "2/6 murmur" are not. A date
    cue ("on 7/4") settles it; otherwise a denominator that scales use (2 to 6, 8, 10) rules it out."""
    before = _before(m, 24)
    if _DATE_CUE.search(before):
        return True
    after = m.string[m.end() : m.end() + 12].lower()
    scale_after = re.match(r"\s*(?:strength|murmur|pain|power|tab|of\b|cup|dose)", after)
    day = int(m.group().split("/")[1])
    return day not in (2, 3, 4, 5, 6, 8, 10) and not _SCALE.search(before) and not scale_after


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
        # Each shape starts only where its run of characters starts: restarting inside a long
        # "a.b.a.b..." run would make the scan quadratic in the run's length.
        Recognizer(
            "EMAIL",
            re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b"),
            1.0,
        ),
        SpelledEmail(
            "EMAIL",
            re.compile(rf"{_AT}(?!www\.)[A-Za-z0-9\-]+(?:{_DOT}[A-Za-z0-9\-]+)*?{_DOT}{_TLD}\b"),
            1.0,
        ),
        Recognizer(
            "URL",
            re.compile(
                r"\b(?:https?://|ftp://|www\.)[^\s<>\"')\]]+"
                r"|(?<![A-Za-z0-9\-])(?<![A-Za-z0-9\-]\.)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.(?:com|org|net|edu|gov|io|info|biz|us|co|me|health)\b(?:/[^\s<>\"')\]]*)?"
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
        Recognizer("SSN", re.compile(r"(?<![\d\-.])\d{3}([- .])\d{2}\1\d{4}(?![\d\-]|\.\d)"), 0.95),
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
                r"\b(?=(?:[A-Z\-]{0,40}\d){3})(?=[0-9\-]{0,40}[A-Z])[A-Z0-9][A-Z0-9\-]{3,60}[A-Z0-9]\b"
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
                rf"|\b\d{{1,2}}(?:-{_ANY_CASE_MONTH}-|/{_ANY_CASE_MONTH}/|\.{_ANY_CASE_MONTH}\.|{_ANY_CASE_MONTH})(?:\d{{4}}|\d{{2}})\b"
                rf"|\b{_ANY_CASE_MONTH}[\-/.]\d{{1,2}}[\-/.](?:\d{{4}}|\d{{2}})\b"
                rf"|\b\d{{1,2}}\s+{_ANY_CASE_MONTH}\.?\s+\d{{4}}\b"
            ),
            0.85,
        ),
        # M/D without a year ("seen 3/14"): only where it cannot be a score or a fraction.
        Recognizer(
            "DATE",
            re.compile(r"\b(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?![\d/]|\.\d)"),
            0.7,
            accept=_month_day,
        ),
        # Ages over 89 (Safe Harbor aggregates them; younger ages may stay): "93 y.o.", "93yo", "93F",
        # "93-year-old", "ninety-three years old", "aged 93".
        Recognizer("AGE", re.compile(rf"\b(?:9\d|1[0-4]\d|{_AGE_WORDS})(?={_AGE_UNIT})"), 0.9),
        Recognizer(
            "AGE",
            re.compile(r"(?<![\d.,])\b(?:9\d|1[0-4]\d)(?=\s?(?:[MF]|(?i:male|female|man|woman|yo[mf]))\b)"),
            0.9,
            accept=_not_a_temperature,
        ),
        Recognizer(
            "AGE", re.compile(rf"(?i:\baged?\s*:?\s*)(?P<age>9\d|1[0-4]\d|{_AGE_WORDS})\b"), 0.9, group="age"
        ),
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
