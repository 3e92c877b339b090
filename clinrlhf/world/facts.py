"""Patient facts: what the world's rules read from FHIR R4, and all the policy ever sees.

`facts_from_bundle` reads either a raw bundle (in tests and the simulator) or a de-identified one,
where `Patient.birthDate` is replaced by an age extension (see ``privacy.deid``).

Race and ethnicity (US Core extensions, OMB categories) are read too, for one purpose only: to audit
fairness by subgroup. No rule of the world uses them and the policy's prompt never shows them
(clinrlhf.text.prompt renders findings, sex and an age band). They are None where the record has
no such extension (de-identification keeps only their OMB category codes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date

from clinrlhf.world.labs import is_possible
from privacy.deid import AGE_EXTENSION_URL

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
AGE_CAP = 90  # HIPAA Safe Harbor: ages over 89 are aggregated into one category.
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"  # CDC Race & Ethnicity code set
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
# OMB category code -> (subgroup name, display). Subgroup names become MLflow metric name parts.
OMB_RACE = {
    "1002-5": ("aian", "American Indian or Alaska Native"),
    "2028-9": ("asian", "Asian"),
    "2054-5": ("black", "Black or African American"),
    "2076-8": ("nhpi", "Native Hawaiian or Other Pacific Islander"),
    "2106-3": ("white", "White"),
}
OMB_ETHNICITY = {
    "2135-2": ("hispanic", "Hispanic or Latino"),
    "2186-5": ("not_hispanic", "Not Hispanic or Latino"),
}


class ImpossibleLabValueError(ValueError):
    """A lab value no patient can have (clinrlhf.world.labs). Fixed text: it never quotes the value."""


@dataclass(frozen=True)
class PatientFacts:
    """The de-identified clinical picture of one patient on the day of a request."""

    age: int  # whole years on the request date, capped at 90
    sex: str  # Patient.gender: female | male | other | unknown
    conditions: frozenset[str] = frozenset()  # active SNOMED codes
    allergies: frozenset[str] = frozenset()  # active SNOMED codes
    labs: Mapping[str, float] = field(default_factory=dict)  # LOINC -> most recent value
    medications: frozenset[str] = frozenset()  # RxNorm codes of active MedicationRequests
    race: str | None = None  # OMB race subgroup (see OMB_RACE), multiracial or unknown; None: not recorded
    ethnicity: str | None = None  # hispanic | not_hispanic | unknown; None: not recorded

    def to_json(self) -> str:
        """Canonical JSON. Race and ethnicity appear only when recorded, so the JSON (and every hash
        of it) of a record without them is what it was before they existed."""
        raw: dict = {
            "age": self.age,
            "sex": self.sex,
            "conditions": sorted(self.conditions),
            "allergies": sorted(self.allergies),
            "labs": dict(sorted(self.labs.items())),
            "medications": sorted(self.medications),
        }
        raw |= {k: v for k, v in (("race", self.race), ("ethnicity", self.ethnicity)) if v is not None}
        return json.dumps(raw, sort_keys=True, allow_nan=False)  # RFC 8259: never NaN or Infinity

    @classmethod
    def from_json(cls, text: str) -> PatientFacts:
        raw = json.loads(text)
        return cls(
            age=int(raw["age"]),
            sex=str(raw["sex"]),
            conditions=frozenset(raw["conditions"]),
            allergies=frozenset(raw["allergies"]),
            labs={k: float(v) for k, v in raw["labs"].items()},
            medications=frozenset(raw["medications"]),
            race=raw.get("race"),
            ethnicity=raw.get("ethnicity"),
        )


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _codes(concept: Mapping | None, system: str) -> Iterator[str]:
    for coding in (concept or {}).get("coding", []):
        if coding.get("system") == system and coding.get("code"):
            yield str(coding["code"])


def _is_active(resource: Mapping) -> bool:
    status = list(_codes(resource.get("clinicalStatus"), _clinical_status_system(resource)))
    if resource.get("abatementDateTime") or resource.get("abatementPeriod"):
        return False
    return not status or status[0] == "active"


def _clinical_status_system(resource: Mapping) -> str:
    kind = "allergyintolerance" if resource.get("resourceType") == "AllergyIntolerance" else "condition"
    return f"http://terminology.hl7.org/CodeSystem/{kind}-clinical"


def _resources(bundle: Mapping) -> Iterable[Mapping]:
    return (e["resource"] for e in bundle.get("entry", []) if isinstance(e, Mapping) and "resource" in e)


def _patient_age(patient: Mapping, on: date) -> int:
    for ext in patient.get("extension", []):
        if ext.get("url") == AGE_EXTENSION_URL:
            return min(int(ext["valueInteger"]), AGE_CAP)
    birth = patient.get("birthDate")
    if not birth:
        raise ValueError("Patient has neither birthDate nor an age extension")
    return min(age_on(date.fromisoformat(str(birth)[:10]), on), AGE_CAP)


def _omb_categories(patient: Mapping, url: str) -> list[str] | None:
    """The ombCategory codes of one US Core extension (NullFlavor codes included), or None when the
    Patient has no such extension."""
    for ext in patient.get("extension", []):
        if isinstance(ext, Mapping) and ext.get("url") == url:
            return [
                str((part.get("valueCoding") or {}).get("code", ""))
                for part in ext.get("extension", [])
                if isinstance(part, Mapping) and part.get("url") == "ombCategory"
            ]
    return None


def _race(patient: Mapping) -> str | None:
    codes = _omb_categories(patient, US_CORE_RACE)
    if codes is None:
        return None
    known = sorted({OMB_RACE[c][0] for c in codes if c in OMB_RACE})
    return "multiracial" if len(known) > 1 else known[0] if known else "unknown"


def _ethnicity(patient: Mapping) -> str | None:
    codes = _omb_categories(patient, US_CORE_ETHNICITY)
    if codes is None:
        return None
    known = [OMB_ETHNICITY[c][0] for c in codes if c in OMB_ETHNICITY]
    return known[0] if len(known) == 1 else "unknown"


def _observation_time(obs: Mapping) -> str:
    return str(
        obs.get("effectiveDateTime")
        or obs.get("issued")
        or (obs.get("effectivePeriod") or {}).get("start")
        or ""
    )


def facts_from_bundle(bundle: Mapping, on: date | None = None) -> PatientFacts:
    """Read the facts of the one Patient in a FHIR R4 Bundle (searchset, collection or transaction)."""
    on = on or date.today()
    resources = list(_resources(bundle))
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise ValueError(f"expected exactly one Patient in the bundle, found {len(patients)}")
    conditions: set[str] = set()
    allergies: set[str] = set()
    meds: set[str] = set()
    latest: dict[str, tuple[str, float]] = {}
    for r in resources:
        kind = r.get("resourceType")
        if kind == "Condition" and _is_active(r):
            conditions.update(_codes(r.get("code"), SNOMED))
        elif kind == "AllergyIntolerance" and _is_active(r):
            allergies.update(_codes(r.get("code"), SNOMED))
        elif kind == "MedicationRequest" and r.get("status") == "active":
            meds.update(_codes(r.get("medicationCodeableConcept"), RXNORM))
        elif kind == "Observation" and isinstance(r.get("valueQuantity"), Mapping):
            raw = r["valueQuantity"].get("value")
            if raw is None:
                continue
            value, codes = float(raw), list(_codes(r.get("code"), LOINC))
            if not all(is_possible(code, value) for code in codes) or not math.isfinite(value):
                raise ImpossibleLabValueError("an Observation's value is outside what its lab can report")
            when = _observation_time(r)
            for code in codes:
                if code not in latest or when >= latest[code][0]:
                    latest[code] = (when, value)
    return PatientFacts(
        age=_patient_age(patients[0], on),
        sex=str(patients[0].get("gender", "unknown")),
        conditions=frozenset(conditions),
        allergies=frozenset(allergies),
        labs={code: value for code, (_, value) in latest.items()},
        medications=frozenset(meds),
        race=_race(patients[0]),
        ethnicity=_ethnicity(patients[0]),
    )
