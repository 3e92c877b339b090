"""De-identify a whole export at once: every patient of a Bundle or of NDJSON lines, one report.

What `clinrlhf deidentify` and `POST /fhir/$deidentify` share, so that a hospital de-identifying
its own export gets what ingestion would do to the same records: the same rule file, the same
per-patient engine and the same report (counts by identifier type and method, and the k-anonymity
of the batch's quasi-identifiers), never a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from privacy.deid.bundle import deidentify_with_report
from privacy.deid.kanon import QuasiIdentifiers, k_report, quasi_identifiers_of_patient
from privacy.deid.report import DeidReport
from privacy.deid.ruleset import RuleSet, default_rules

# Exceptions a malformed record can raise inside the engine. Their messages may quote the record,
# so only our own fixed messages (below) are passed on.
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError)
_OWN_MESSAGES = frozenset(
    {
        "an element the rules keep holds a value of the wrong type",
        "not a FHIR Bundle with entries",
    }
)


class BatchError(ValueError):
    """A patient of the batch could not be de-identified. The message is fixed text and a position
    ("patient 3 of 11"), never anything taken from the record."""


@dataclass
class Batch:
    """A de-identified export: one collection Bundle holding every patient's resources."""

    bundle: dict[str, Any]
    report: DeidReport
    patients: int = 0
    unlinked: Counter[str] = field(default_factory=Counter)  # resourceType -> resources of no patient

    def resources(self) -> list[dict[str, Any]]:
        return [e["resource"] for e in self.bundle["entry"]]


def _reason(err: Exception) -> str:
    message = str(err) if type(err) is ValueError else ""
    return message if message in _OWN_MESSAGES else f"de-identification failed ({type(err).__name__})"


def _quasi_identifiers(bundle: Mapping[str, Any], today: date, rules: RuleSet) -> QuasiIdentifiers:
    """Generalised at once (age band, sex, ZIP3, OMB race and ethnicity): raw values are never kept."""
    band = int((rules.parameters.get("kAnonymity") or {}).get("ageBandYears", 10))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"].get("resourceType") == "Patient")
    return quasi_identifiers_of_patient(
        patient,
        today,
        band_width=band,
        age_cap=rules.age_cap,
        restricted_zip3=rules.restricted_zip3,
        rules=rules,
    )


def deidentify_batch(
    bundles: Sequence[Mapping[str, Any]],
    unlinked: Mapping[str, int] | None = None,
    *,
    key: bytes,
    today: date,
    rules: RuleSet | None = None,
) -> Batch:
    """De-identify one-patient Bundles (from `privacy.deid.split`) into one Bundle and one report.

    All or nothing: a patient whose record cannot be de-identified raises BatchError, so an export
    never comes back silently missing a patient. `unlinked` (resources that name no patient of the
    batch) is passed through for the caller to report: with no patient to shift dates by or to
    scrub against, they are not de-identified and not returned.
    """
    rules = rules or default_rules()
    report = DeidReport(rules.name, rules.version, rules.sha256)
    entries: list[dict[str, Any]] = []
    quasi: list[QuasiIdentifiers] = []
    for n, bundle in enumerate(bundles, 1):
        try:
            result, one = deidentify_with_report(bundle, key=key, today=today, rules=rules)
            quasi.append(_quasi_identifiers(bundle, today, rules))
        except _UNREADABLE as err:
            raise BatchError(f"patient {n} of {len(bundles)}: {_reason(err)}") from None
        report.merge(one)
        entries += result.bundle["entry"]
    min_k = int((rules.parameters.get("kAnonymity") or {}).get("minK", 5))
    report.k_anonymity = k_report(quasi, min_k)
    return Batch(
        bundle={"resourceType": "Bundle", "type": "collection", "entry": entries},
        report=report,
        patients=len(bundles),
        unlinked=Counter(unlinked or {}),
    )
