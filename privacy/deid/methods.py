"""The transformations a rule can name, as pure functions of a value (and a key where one is needed)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from privacy.deid.crypto import pseudonym
from privacy.deid.normalize import normalize
from privacy.deid.resource_types import RESOURCE_TYPES

# HL7 v2 table 0203 identifier types, and the Safe Harbor identifier each one is.
_IDENTIFIER_TYPES = {
    "MR": "mrn",
    "MRT": "mrn",
    "PI": "mrn",
    "SS": "ssn",
    "SB": "ssn",
    "DL": "license",
    "PPN": "license",
    "DR": "license",
    "MD": "license",
    "NPI": "license",
    "MB": "health_plan",
    "MA": "health_plan",
    "MC": "health_plan",
    "SN": "health_plan",
    "AN": "account",
    "AM": "account",
    "SR": "device",
    "UDI": "device",
}
_TELECOM_SYSTEMS = {"phone": "telephone", "sms": "telephone", "fax": "fax", "email": "email", "url": "url"}
# A FHIR date, dateTime or instant, ASCII digits only (https://hl7.org/fhir/R4/datatypes.html#dateTime).
_FHIR_DATE = re.compile(
    r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)
# A US ZIP code (5 digits, optionally ZIP+4) or an already generalized ZIP3.
_ZIP = re.compile(r"([0-9]{3})([0-9]{2}(-?[0-9]{4})?)?")


def age_in_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def fhir_date(value: Any) -> str | None:
    """`value` normalised (NFKC, no format characters) if it is then a FHIR date/dateTime, else None."""
    if not isinstance(value, str):
        return None
    value = normalize(value)
    return value if _FHIR_DATE.fullmatch(value) else None


def first_day(value: Any) -> date | None:
    """The earliest day a FHIR date, dateTime or instant can denote ("1933" -> 1933-01-01)."""
    text = fhir_date(value)
    if text is None:
        return None
    day = text[:10]
    try:
        return date.fromisoformat({4: f"{day}-01-01", 7: f"{day}-01"}.get(len(day), day))
    except ValueError:
        return None


def generalize_age(birth_date: Any, today: date, cap: int) -> int | None:
    """Whole years on `today`; every age above `cap - 1` becomes `cap` (90 stands for 90 or older).
    None unless the birth date is a full date (a year alone gives a range, not an age)."""
    text = fhir_date(birth_date)
    born = first_day(text) if text is not None and len(text) >= 10 else None
    return None if born is None else max(0, min(age_in_years(born, today), cap))


def may_be_at_least(birth_date: Any, today: date, age: int) -> bool:
    """True if someone born on `birth_date` may be `age` or older on `today`: a partial date counts
    from its first day ("1936" on 2026-03-01 may be 90), so a partial date never hides an age."""
    born = first_day(birth_date)
    return born is not None and age_in_years(born, today) >= age


def years_before(today: date, years: int) -> date:
    """The same day `years` years earlier (28 February for 29 February in a common year)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def zip3(postal_code: str, restricted: frozenset[str]) -> str:
    """The first three digits of a ZIP code (or ZIP3); "000" for restricted prefixes and anything
    that is not a ZIP code once normalised, so fullwidth or other-script digits never pass through."""
    match = _ZIP.fullmatch(normalize(postal_code).strip())
    return "000" if match is None or match[1] in restricted else match[1]


def shift_date(value: Any, shift: timedelta, *, not_before: date | None = None) -> str | None:
    """A FHIR date, dateTime or instant moved by `shift`, keeping its precision, time and zone.

    None for anything else, and for a date before `not_before`: a date that far back says by itself
    that the patient was alive then, i.e. is at least as old (Safe Harbor: dates indicative of an
    age over 89 go too). The value is normalised first, so the output holds ASCII digits only."""
    value = fhir_date(value)
    if value is None:
        return None
    if not_before is not None and (start := first_day(value)) is not None and start < not_before:
        return None
    try:
        if len(value) == 4:  # YYYY: shift from mid-year so the year moves only if the shift says so
            return str((date(int(value), 7, 2) + shift).year)
        if len(value) == 7:  # YYYY-MM
            return (date.fromisoformat(value + "-15") + shift).isoformat()[:7]
        day = date.fromisoformat(value[:10])
        if len(value) > 10:
            datetime.fromisoformat(value.replace("Z", "+00:00"))  # reject what is not a dateTime
    except ValueError:
        return None
    return (day + shift).isoformat() + value[10:]


def hash_id(key: bytes, value: Any) -> str:
    return pseudonym(key, str(value))


def hash_reference(key: bytes, value: Any, types: Mapping[str, str]) -> str | None:
    """`Type/id`, `urn:uuid:id` or `https://server/fhir/Type/id` becomes `Type/<pseudonym>`; the
    pseudonym is the one the target's own id gets, so references still resolve inside the bundle.

    The type is kept only if it is a FHIR resource type name (the segment before the id, else the
    target's resourceType in this bundle, itself input): "John Smith/pat-1" keeps no "John Smith"."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("urn:uuid:") or value.startswith("urn:oid:"):
        target = value.split(":", 2)[2]
        kind = None
    else:
        parts = value.split("/_history/")[0].rstrip("/").split("/")
        target, kind = parts[-1], normalize(parts[-2]) if len(parts) >= 2 else None
    if kind not in RESOURCE_TYPES:
        kind = types.get(target)
    hashed = hash_id(key, target)
    return f"{kind}/{hashed}" if kind in RESOURCE_TYPES else hashed


def identifier_kind(identifier: Any) -> str:
    """What a FHIR Identifier is, by its v2-0203 type or system: "mrn", "ssn", "license", ...
    (only the report's counts depend on it: every identifier is redacted, whatever its kind)."""
    if not isinstance(identifier, Mapping):
        return "other_id"
    if normalize(str(identifier.get("system", ""))).endswith("us-ssn"):
        return "ssn"
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, Mapping) else None
    for coding in codings if isinstance(codings, list) else []:
        code = coding.get("code") if isinstance(coding, Mapping) else None
        if isinstance(code, str) and normalize(code) in _IDENTIFIER_TYPES:
            return _IDENTIFIER_TYPES[normalize(code)]
    return "other_id"


def telecom_kind(contact: Any) -> str:
    system = contact.get("system") if isinstance(contact, Mapping) else None
    return _TELECOM_SYSTEMS.get(normalize(str(system)), "telecom")


def _allowed_coding(
    part: Any, urls: Sequence[str], code_systems: Mapping[str, Sequence[str]]
) -> dict[str, str] | None:
    """`{"system", "code"}` of a sub-extension the allow-list keeps, or None."""
    if not isinstance(part, Mapping) or part.get("url") not in urls:
        return None
    coding = part.get("valueCoding")
    if not isinstance(coding, Mapping):
        return None
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str) or code not in code_systems.get(system, ()):
        return None
    return {"system": system, "code": code}


def keep_extensions(
    value: Any, allow: Mapping[str, Sequence[str]], code_systems: Mapping[str, Sequence[str]]
) -> tuple[list[dict[str, Any]], int]:
    """The extensions in `value` that an allow-list keeps, and how many extensions and sub-extensions
    were dropped.

    `allow` maps an extension URL to the sub-extension URLs that may stay (US Core race: ombCategory);
    `code_systems` maps a code system to the codes that may stay. Only each allowed sub-extension's
    `valueCoding.system` and `.code` are copied, and only when both are on the allow-list, so every
    string that leaves is equal to one in the rule file: `display`, `text` sub-extensions (free text),
    `detailed` codes, any other sub-extension or value, and every extension not on the list are
    dropped. An extension left with no coding is dropped whole; a repeated URL keeps its first copy.
    """
    kept: list[dict[str, Any]] = []
    dropped = 0
    for ext in value if isinstance(value, list) else [value]:
        url = ext.get("url") if isinstance(ext, Mapping) else None
        if not isinstance(url, str) or url not in allow or any(k["url"] == url for k in kept):
            dropped += 1
            continue
        parts = ext.get("extension")
        codings: list[dict[str, Any]] = []
        for part in parts if isinstance(parts, list) else []:
            coding = _allowed_coding(part, allow[url], code_systems)
            sub = {"url": part["url"], "valueCoding": coding} if coding is not None else None
            if sub is None or sub in codings:
                dropped += 1
            else:
                codings.append(sub)
        if codings:
            kept.append({"url": url, "extension": codings})
        else:
            dropped += 1
    return kept, dropped
