"""k-anonymity of quasi-identifiers (age band, sex, ZIP3, and race and ethnicity where the record
keeps them), and suppression below a minimum k.

A record is k-anonymous when at least k-1 other records share its quasi-identifiers (Sweeney 2002,
https://doi.org/10.1142/S0218488502001648). A snapshot's k is the size of its smallest class; records
in classes smaller than the configured minimum are suppressed (left out) rather than generalized
further, since age band and ZIP3 are already as coarse as training can use.

Race and ethnicity are not Safe Harbor identifiers, but once the rule file keeps their OMB categories
(`keepExtension` on Patient.extension) they are quasi-identifiers of the de-identified record, so a
Patient's classes include them. They are read through the same allow-list the rule file applies, so
the class is what the de-identified record carries, raw or de-identified input alike. Records that do
not carry them at all (a training snapshot's prompts never show race) leave them None, and `k_report`
lists only the quasi-identifiers some record carries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from privacy.deid.methods import generalize_age, keep_extensions, zip3
from privacy.deid.normalize import normalize
from privacy.deid.paths import compile_tree
from privacy.deid.ruleset import RuleSet, default_rules

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
_URLS = (US_CORE_RACE, US_CORE_ETHNICITY)
NOT_RECORDED = "not-recorded"  # the record keeps race/ethnicity, but this patient has none


@dataclass(frozen=True, order=True)
class QuasiIdentifiers:
    age_band: str  # "40-49", ..., "90+"
    sex: str
    zip3: str
    # The kept OMB category codes, sorted and joined with "+" ("2106-3", "2054-5+2106-3", "UNK"), or
    # NOT_RECORDED; None where the records do not carry race or ethnicity at all.
    race: str | None = None
    ethnicity: str | None = None


def age_band(age: int, width: int = 10, cap: int = 90) -> str:
    """Ages in bands of `width` years; every age from `cap` up is one band, as Safe Harbor requires."""
    if age >= cap:
        return f"{cap}+"
    low = (max(age, 0) // width) * width
    return f"{low}-{min(low + width - 1, cap - 1)}"


def equivalence_classes(records: Sequence[QuasiIdentifiers]) -> Counter[QuasiIdentifiers]:
    return Counter(records)


def k_anonymity(records: Sequence[QuasiIdentifiers]) -> int:
    """The size of the smallest equivalence class; 0 for no records."""
    classes = equivalence_classes(records)
    return min(classes.values()) if classes else 0


def suppress_below_k(records: Sequence[QuasiIdentifiers], min_k: int) -> tuple[list[int], list[int]]:
    """(kept, suppressed) record indices: a record is suppressed if fewer than `min_k` records,
    itself included, share its quasi-identifiers. What is kept is min_k-anonymous (or empty)."""
    classes = equivalence_classes(records)
    kept = [i for i, r in enumerate(records) if classes[r] >= min_k]
    suppressed = [i for i, r in enumerate(records) if classes[r] < min_k]
    return kept, suppressed


def quasi_identifier_names(records: Sequence[QuasiIdentifiers]) -> list[str]:
    """The quasi-identifiers the records carry: age band, sex, ZIP3, and race and ethnicity if kept."""
    names = ["age_band", "sex", "zip3"]
    return names + [n for n in ("race", "ethnicity") if any(getattr(r, n) is not None for r in records)]


def k_report(records: Sequence[QuasiIdentifiers], min_k: int) -> dict[str, Any]:
    """What a snapshot's lineage records: k before and after suppression, and how many were cut."""
    kept, suppressed = suppress_below_k(records, min_k)
    classes = equivalence_classes(records)
    return {
        "quasi_identifiers": quasi_identifier_names(records),
        "records": len(records),
        "classes": len(classes),
        "k": k_anonymity(records),
        "min_k": min_k,
        "suppressed": len(suppressed),
        "k_after_suppression": k_anonymity([records[i] for i in kept]),
    }


def quasi_identifiers_of_patient(
    patient: Mapping[str, Any],
    today: date,
    *,
    band_width: int = 10,
    age_cap: int = 90,
    restricted_zip3: frozenset[str] = frozenset(),
    rules: RuleSet | None = None,
) -> QuasiIdentifiers:
    """The quasi-identifiers of a raw or de-identified Patient: birthDate or the age extension,
    gender, the first address's ZIP (already ZIP3 once de-identified), and, when `rules` (default:
    the packaged rule file) keeps Patient.extension by `keepExtension`, the race and ethnicity codes
    that rule keeps."""
    age = generalize_age(patient.get("birthDate"), today, age_cap)
    for ext in patient.get("extension") or []:
        if (
            isinstance(ext, Mapping)
            and isinstance(ext.get("valueInteger"), int)
            and "age" in str(ext.get("url"))
        ):
            age = ext["valueInteger"]
    rules = rules or default_rules()
    race, ethnicity = _race_and_ethnicity(patient, rules)
    addresses = [a for a in patient.get("address") or [] if isinstance(a, Mapping)]
    postal = addresses[0].get("postalCode") if addresses else None
    return QuasiIdentifiers(
        age_band=age_band(age, band_width, age_cap) if age is not None else "unknown",
        sex=_sex(patient.get("gender"), rules),
        zip3=zip3(postal, restricted_zip3) if isinstance(postal, str) else "000",
        race=race,
        ethnicity=ethnicity,
    )


def _sex(gender: Any, rules: RuleSet) -> str:
    """Patient.gender as the rule file's Patient.gender rule would keep it (normalised, in its value
    set), or "unknown" where the de-identified record would hold none."""
    node = compile_tree(rules.rules, "Patient").children.get("gender")
    rule = node.rule if node is not None else None
    if not isinstance(gender, str) or rule is None or rule.method != "keep":
        return "unknown"
    gender = normalize(gender)
    allowed = rules.value_sets.get(rule.params.get("valueSet", ""))
    pattern = rules.patterns.get(rule.params.get("pattern", ""))
    if (allowed is not None and gender not in allowed) or (
        pattern is not None and not pattern.fullmatch(gender)
    ):
        return "unknown"
    return gender


def _race_and_ethnicity(patient: Mapping[str, Any], rules: RuleSet) -> tuple[str | None, str | None]:
    """What the rule file's Patient.extension rule keeps of race and ethnicity (the rule the engine
    would apply: a Patient rule before a Resource rule); None for one the rule never keeps."""
    node = compile_tree(rules.rules, "Patient").children.get("extension")
    rule = node.rule if node is not None else None
    if rule is None or rule.method != "keepExtension":
        return None, None
    allow = rule.params["allow"]
    kept, _ = keep_extensions(patient.get("extension") or [], allow, rule.params["codeSystems"])
    codes = {
        ext["url"]: "+".join(sorted({part["valueCoding"]["code"] for part in ext["extension"]}))
        for ext in kept
    }
    race, ethnicity = (codes.get(url, NOT_RECORDED) if url in allow else None for url in _URLS)
    return race, ethnicity
