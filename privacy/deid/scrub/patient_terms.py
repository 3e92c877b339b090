"""The patient's own identifiers, read from the structured Patient, found wherever they recur in text.

Generic recognizers miss what does not look like an identifier ("Ruelas156", a driver's licence with
no label, a street with an unusual suffix); the record itself says exactly what to look for. Numbers
match whatever their punctuation ("555-355-9196" also finds "(555) 355 9196"), dates match in the
common spellings, and names match with or without Synthea's trailing digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from privacy.deid.methods import identifier_kind, telecom_kind
from privacy.deid.scrub.normalise import fold_text
from privacy.deid.scrub.spans import Span

# Structured kinds (privacy.deid.methods) as text entity types.
_ENTITY = {
    "telephone": "PHONE",
    "telecom": "PHONE",
    "fax": "FAX",
    "email": "EMAIL",
    "url": "URL",
    "ssn": "SSN",
    "mrn": "MRN",
    "health_plan": "HEALTH_PLAN",
    "account": "ACCOUNT",
    "license": "LICENSE",
    "vehicle": "VEHICLE",
    "device": "DEVICE",
    "other_id": "ID",
}
_MIN_TERM = 3  # shorter terms ("Al", "Jo") would match inside too much ordinary text
_DIGITS = re.compile(r"\d")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a FHIR list element; anything malformed is skipped, never an error."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _name_terms(names: Any) -> set[str]:
    terms: set[str] = set()
    for name in _mappings(names):
        for part in [
            *_strings(name.get("given")),
            *_strings(name.get("family")),
            *_strings(name.get("text")),
        ]:
            for word in fold_text(part).split():
                # "Fennimore-Pratt" is also written as either half.
                for term in (word, *word.split("-")):
                    terms |= {term, term.rstrip("0123456789")}
    return terms


def _date_terms(value: Any) -> set[str]:
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return set()
    month = day.strftime("%B")
    return {
        day.isoformat(),
        f"{day.month}/{day.day}/{day.year}",
        f"{day.month:02d}/{day.day:02d}/{day.year}",
        f"{day.month}-{day.day}-{day.year}",
        f"{day.month:02d}-{day.day:02d}-{day.year}",
        f"{day.month}/{day.day}/{day.year % 100:02d}",
        f"{month} {day.day}, {day.year}",
        f"{month[:3]} {day.day}, {day.year}",
        f"{day.day} {month} {day.year}",
    }


def _address_terms(addresses: Any) -> set[str]:
    terms: set[str] = set()
    for a in _mappings(addresses):
        terms |= set(_strings(a.get("line"))) | set(_strings(a.get("city")))
        terms |= set(_strings(a.get("district"))) | set(_strings(a.get("postalCode")))
    return {fold_text(t) for t in terms}


def _number_pattern(value: str) -> str:
    """A number that matches with any punctuation between its digits."""
    digits = [d for d in value if d.isdigit()]
    return r"[\s().\-/]{0,2}".join(digits)


@dataclass(frozen=True)
class PatientTerms:
    """Compiled matchers for one patient's identifiers, by entity type. They are compiled from
    folded terms (`normalise`), so they match folded text."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()

    def find(self, folded: str) -> list[Span]:
        """Spans in text already folded by `normalise.fold` (the scrubber folds once for everyone)."""
        return [Span(*m.span(), kind, 1.0) for kind, p in self.patterns for m in p.finditer(folded)]

    def matches(self, text: str) -> bool:
        folded = fold_text(text)
        return any(p.search(folded) for _, p in self.patterns)


def _compile(terms: Iterable[str], numbers: Iterable[str] = ()) -> re.Pattern[str] | None:
    literal = sorted({t for t in terms if len(t) >= _MIN_TERM}, key=len, reverse=True)
    alternatives = [re.escape(t) for t in literal]
    alternatives += [_number_pattern(n) for n in numbers if len(_DIGITS.findall(n)) >= 7]
    if not alternatives:
        return None
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(alternatives) + r")(?![A-Za-z0-9])", re.IGNORECASE)


def patient_terms(patient: Mapping[str, Any] | None) -> PatientTerms:
    """Matchers for the names, telecom, identifiers, address and birth date of the raw Patient, and
    the names, telecom and addresses of its contacts (relatives are named in other resources' notes).
    Nothing here is ever stored: the matchers live for one bundle."""
    if not patient:
        return PatientTerms()
    contacts = _mappings(patient.get("contact"))
    numbers: dict[str, list[str]] = {"ID": list(_strings(patient.get("id")))}
    telecoms = [
        *_mappings(patient.get("telecom")),
        *(t for c in contacts for t in _mappings(c.get("telecom"))),
    ]
    addresses = [
        *_mappings(patient.get("address")),
        *(c["address"] for c in contacts if isinstance(c.get("address"), Mapping)),
    ]
    for t in telecoms:
        numbers.setdefault(_ENTITY[telecom_kind(t)], []).extend(_strings(t.get("value")))
    for i in _mappings(patient.get("identifier")):
        numbers.setdefault(_ENTITY[identifier_kind(i)], []).extend(_strings(i.get("value")))
    groups: dict[str, tuple[set[str], list[str]]] = {k: (set(v), v) for k, v in numbers.items()}
    groups["NAME"] = (_name_terms(patient.get("name")) | _name_terms([c.get("name") for c in contacts]), [])
    groups["ADDRESS"] = (_address_terms(addresses), [])
    groups["DATE"] = (_date_terms(patient.get("birthDate")), [])
    compiled = ((kind, _compile(terms, nums)) for kind, (terms, nums) in groups.items())
    return PatientTerms(tuple((kind, p) for kind, p in compiled if p is not None))
