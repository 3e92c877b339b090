"""k-anonymity of quasi-identifiers (age band, sex, ZIP3), and suppression below a minimum k.

A record is k-anonymous when at least k-1 other records share its quasi-identifiers (Sweeney 2002,
https://doi.org/10.1142/S0218488502001648). A snapshot's k is the size of its smallest class; records
in classes smaller than the configured minimum are suppressed (left out) rather than generalized
further, since age band and ZIP3 are already as coarse as training can use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from privacy.deid.methods import generalize_age, zip3


@dataclass(frozen=True, order=True)
class QuasiIdentifiers:
    age_band: str  # "40-49", ..., "90+"
    sex: str
    zip3: str


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


def k_report(records: Sequence[QuasiIdentifiers], min_k: int) -> dict[str, Any]:
    """What a snapshot's lineage records: k before and after suppression, and how many were cut."""
    kept, suppressed = suppress_below_k(records, min_k)
    classes = equivalence_classes(records)
    return {
        "quasi_identifiers": ["age_band", "sex", "zip3"],
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
) -> QuasiIdentifiers:
    """The quasi-identifiers of a raw or de-identified Patient: birthDate or the age extension,
    gender, and the first address's ZIP (already ZIP3 once de-identified)."""
    age = generalize_age(patient.get("birthDate"), today, age_cap)
    for ext in patient.get("extension") or []:
        if (
            isinstance(ext, Mapping)
            and isinstance(ext.get("valueInteger"), int)
            and "age" in str(ext.get("url"))
        ):
            age = ext["valueInteger"]
    addresses = [a for a in patient.get("address") or [] if isinstance(a, Mapping)]
    postal = addresses[0].get("postalCode") if addresses else None
    return QuasiIdentifiers(
        age_band=age_band(age, band_width, age_cap) if age is not None else "unknown",
        sex=str(patient.get("gender", "unknown")),
        zip3=zip3(postal, restricted_zip3) if isinstance(postal, str) else "000",
    )
