"""The transformations a rule can name, as pure functions of a value (and a key where one is needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from privacy.deid.crypto import pseudonym

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


def age_in_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def generalize_age(birth_date: Any, today: date, cap: int) -> int | None:
    """Whole years on `today`; every age above `cap - 1` becomes `cap` (90 stands for 90 or older)."""
    try:
        born = date.fromisoformat(str(birth_date)[:10])
    except ValueError:
        return None
    return max(0, min(age_in_years(born, today), cap))


def zip3(postal_code: str, restricted: frozenset[str]) -> str:
    """The first three digits of a ZIP code; "000" for sparsely populated prefixes and non-ZIPs."""
    digits = "".join(ch for ch in postal_code if ch.isdigit())[:3]
    return "000" if len(digits) < 3 or digits in restricted else digits


def shift_date(value: Any, shift: timedelta) -> str | None:
    """A FHIR date, dateTime or instant moved by `shift`, keeping its precision, time and zone."""
    if not isinstance(value, str):
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
    pseudonym is the one the target's own id gets, so references still resolve inside the bundle."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("urn:uuid:") or value.startswith("urn:oid:"):
        target = value.split(":", 2)[2]
        kind = types.get(target)
    else:
        parts = value.split("/_history/")[0].rstrip("/").split("/")
        target, kind = parts[-1], parts[-2] if len(parts) >= 2 else types.get(parts[-1])
    hashed = hash_id(key, target)
    return f"{kind}/{hashed}" if kind else hashed


def identifier_kind(identifier: Any) -> str:
    """What a FHIR Identifier is, by its v2-0203 type or system: "mrn", "ssn", "license", ..."""
    if not isinstance(identifier, Mapping):
        return "other_id"
    if str(identifier.get("system", "")).endswith("us-ssn"):
        return "ssn"
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, Mapping) else None
    for coding in codings if isinstance(codings, list) else []:
        code = coding.get("code") if isinstance(coding, Mapping) else None
        if isinstance(code, str) and code in _IDENTIFIER_TYPES:
            return _IDENTIFIER_TYPES[code]
    return "other_id"


def telecom_kind(contact: Any) -> str:
    system = contact.get("system") if isinstance(contact, Mapping) else None
    return _TELECOM_SYSTEMS.get(str(system), "telecom")


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
