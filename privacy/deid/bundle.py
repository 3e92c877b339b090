"""De-identification of a FHIR R4 Bundle describing one patient, by the rules of a rule file.

The default rule file (``rules/default.json``) is an allow-list: names, telecom, addresses below
ZIP3, identifiers, narratives and extensions never leave this module (but for the OMB category codes
of US Core race and ethnicity); ids and references become HMAC
pseudonyms, dates are shifted per patient, the birth date becomes an age in years (90+ aggregated, as
HIPAA Safe Harbor requires; a patient aged 90 or over keeps no date at all, see `datesAtAgeCap`) and
free text is scrubbed. Resource types it does not list are dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from privacy.deid.crypto import date_shift_days, pseudonym
from privacy.deid.engine import Engine, PatientContext
from privacy.deid.methods import age_in_years, may_be_at_least, years_before
from privacy.deid.methods import zip3 as _zip3
from privacy.deid.report import DeidReport
from privacy.deid.ruleset import RuleSet, default_rules
from privacy.deid.scrub import Scrubber, patient_terms

AGE_EXTENSION_URL = default_rules().age_extension_url
AGE_CAP = default_rules().age_cap
# ZIP3 prefixes covering 20,000 people or fewer (2020 census, see the rule file) become 000.
RESTRICTED_ZIP3 = default_rules().restricted_zip3
CONFIG_VERSION = default_rules().version

__all__ = ["AGE_CAP", "AGE_EXTENSION_URL", "DeidResult", "age_in_years", "deidentify_bundle", "zip3"]


@dataclass
class DeidResult:
    bundle: dict[str, Any]
    patient: str  # the patient's pseudonym
    counts: Counter[str] = field(default_factory=Counter)  # "<identifier type>:<method>" -> count


def zip3(postal_code: str) -> str:
    return _zip3(postal_code, RESTRICTED_ZIP3)


def config_fingerprint(rules: RuleSet | None = None) -> dict[str, Any]:
    """What names the de-identification configuration in lineage: the rule file's name, version, hash."""
    rules = rules or default_rules()
    return {"name": rules.name, "version": rules.version, "sha256": rules.sha256}


def config_sha256(rules: RuleSet | None = None) -> str:
    """The SHA-256 of the rule file's bytes (`sha256sum privacy/deid/rules/default.json`)."""
    return (rules or default_rules()).sha256


_ENGINES: dict[str, Engine] = {}


def _engine(rules: RuleSet) -> Engine:
    if rules.sha256 not in _ENGINES:
        _ENGINES[rules.sha256] = Engine(rules)
    return _ENGINES[rules.sha256]


def _resources(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("not a FHIR Bundle with entries")
    return [
        e["resource"] for e in entries if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
    ]


def deidentify_with_report(
    bundle: Mapping[str, Any], *, key: bytes, today: date | None = None, rules: RuleSet | None = None
) -> tuple[DeidResult, DeidReport]:
    """De-identify a Bundle holding exactly one Patient and their resources; also return its report.

    Errors carry fixed messages only: nothing of the record is ever quoted.
    """
    rules = rules or default_rules()
    resources = _resources(bundle)
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise ValueError(f"expected exactly one Patient in the Bundle, found {len(patients)}")
    patient_id = str(patients[0].get("id", ""))
    today = today or datetime.now().date()
    ctx = PatientContext(
        key=key,
        today=today,
        shift=timedelta(days=date_shift_days(key, patient_id)),
        scrubber=Scrubber(patient_terms(patients[0])),
        types={str(r.get("id")): str(r.get("resourceType")) for r in resources if r.get("id")},
        # Safe Harbor: for ages over 89, every date element indicative of the age goes, year included.
        # Shifted dates still span the patient's life (an event on the day of birth gives the birth
        # year to within the shift), so at the cap no date of the patient is kept, and for anyone a
        # date more than `ageCap` years back is dropped, since it alone says the patient is that old.
        hide_dates=rules.dates_at_age_cap == "redact"
        and may_be_at_least(patients[0].get("birthDate"), today, rules.age_cap),
        dates_from=years_before(today, rules.age_cap),
    )
    engine = _engine(rules)
    kept = [engine.apply(patients[0], ctx)]
    kept += [engine.apply(r, ctx) for r in resources if r is not patients[0]]
    out = [r for r in kept if r is not None]
    result = DeidResult(
        bundle={"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in out]},
        patient=pseudonym(key, patient_id),
        counts=ctx.counts,
    )
    report = DeidReport(rules.name, rules.version, rules.sha256)
    report.add(ctx.counts, resources_in=len(resources), resources_out=len(out))
    return result, report


def deidentify_bundle(
    bundle: Mapping[str, Any], *, key: bytes, today: date | None = None, rules: RuleSet | None = None
) -> DeidResult:
    """De-identify a Bundle holding exactly one Patient and their resources (see the rule file)."""
    return deidentify_with_report(bundle, key=key, today=today, rules=rules)[0]
