"""Allow-list de-identification of a FHIR R4 Bundle describing one patient.

Whatever is not explicitly kept is dropped: names, telecom, addresses below ZIP3, identifiers,
narratives, notes, free text and extensions never leave this function. Ids and references become
HMAC pseudonyms, dates are shifted per patient, and the birth date becomes an age in years (90+
aggregated, as HIPAA Safe Harbor requires).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from privacy.deid.crypto import date_shift_days, pseudonym

AGE_EXTENSION_URL = "https://clinrlhf.dev/fhir/StructureDefinition/age-in-years"
AGE_CAP = 90
# ZIP3 prefixes covering 20,000 people or fewer (HHS Safe Harbor guidance, 2000 census) become 000.
RESTRICTED_ZIP3 = frozenset(
    {
        "036",
        "059",
        "063",
        "102",
        "203",
        "556",
        "692",
        "790",
        "821",
        "823",
        "830",
        "831",
        "878",
        "879",
        "884",
        "890",
        "893",
    }
)


@dataclass
class DeidResult:
    bundle: dict[str, Any]
    patient: str  # the patient's pseudonym
    counts: Counter[str] = field(default_factory=Counter)  # "<identifier type>:<method>" -> count


def _coding_only(concept: Any) -> dict[str, Any] | None:
    """A CodeableConcept reduced to its codings; `text` is free text and is dropped."""
    if not isinstance(concept, Mapping):
        return None
    codings = [
        {k: c[k] for k in ("system", "code", "display") if k in c}
        for c in concept.get("coding", [])
        if isinstance(c, Mapping)
    ]
    return {"coding": codings} if codings else None


def _quantity(q: Any) -> dict[str, Any] | None:
    if not isinstance(q, Mapping) or "value" not in q:
        return None
    return {k: q[k] for k in ("value", "unit", "system", "code") if k in q}


def age_in_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def zip3(postal_code: str) -> str:
    digits = "".join(ch for ch in postal_code if ch.isdigit())[:3]
    return "000" if len(digits) < 3 or digits in RESTRICTED_ZIP3 else digits


class _Deidentifier:
    def __init__(self, key: bytes, patient_id: str, today: date) -> None:
        self.key, self.today = key, today
        self.shift = timedelta(days=date_shift_days(key, patient_id))
        self.counts: Counter[str] = Counter()

    def hash_id(self, value: str) -> str:
        self.counts["id:cryptoHash"] += 1
        return pseudonym(self.key, value)

    def reference(self, ref: Any) -> dict[str, str] | None:
        if not isinstance(ref, Mapping) or not isinstance(ref.get("reference"), str):
            return None
        target = ref["reference"]
        kind, _, rid = target.rpartition("/") if "/" in target else ("", "", target.removeprefix("urn:uuid:"))
        kind = kind.rsplit("/", 1)[-1] if kind else "Patient"
        return {"reference": f"{kind}/{self.hash_id(rid.removeprefix('urn:uuid:'))}"}

    def shift_date(self, value: Any) -> str | None:
        if not isinstance(value, str) or len(value) < 10:
            return None
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return None
        self.counts["date:dateShift"] += 1
        return (day + self.shift).isoformat() + value[10:]  # keep time and zone: order is preserved

    def patient(self, r: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"resourceType": "Patient", "id": self.hash_id(str(r.get("id", "")))}
        if r.get("gender") in ("male", "female", "other", "unknown"):
            out["gender"] = r["gender"]
        if isinstance(r.get("birthDate"), str):
            age = min(age_in_years(date.fromisoformat(r["birthDate"][:10]), self.today), AGE_CAP)
            self.counts["birth_date:generalize"] += 1
            out["extension"] = [{"url": AGE_EXTENSION_URL, "valueInteger": age}]
        for kind in ("name", "telecom", "identifier", "photo", "contact"):
            self.counts[f"{kind}:redact"] += len(r.get(kind) or [])
        addresses = [a for a in r.get("address") or [] if isinstance(a, Mapping)]
        if addresses and isinstance(addresses[0].get("postalCode"), str):
            self.counts["address:generalize"] += 1
            out["address"] = [{"postalCode": zip3(addresses[0]["postalCode"]), "country": "US"}]
        return out

    def clinical(self, r: Mapping[str, Any], spec: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"resourceType": r["resourceType"], "id": self.hash_id(str(r.get("id", "")))}
        for name, keep in spec.items():
            value = keep(r.get(name)) if name in r else None
            if value is not None:
                out[name] = value
        return out


def _specs(d: _Deidentifier) -> dict[str, dict[str, Callable[[Any], Any]]]:
    code, status = _coding_only, _coding_only
    plain = lambda v: v if isinstance(v, str) and v.isascii() and len(v) <= 32 else None  # noqa: E731
    return {
        "Condition": {
            "clinicalStatus": status,
            "verificationStatus": status,
            "code": code,
            "subject": d.reference,
            "onsetDateTime": d.shift_date,
            "abatementDateTime": d.shift_date,
        },
        "Observation": {
            "status": plain,
            "code": code,
            "subject": d.reference,
            "valueQuantity": _quantity,
            "effectiveDateTime": d.shift_date,
            "issued": d.shift_date,
            "category": lambda v: [c for c in map(_coding_only, v or []) if c] or None,
        },
        "MedicationRequest": {
            "status": plain,
            "intent": plain,
            "medicationCodeableConcept": code,
            "subject": d.reference,
            "authoredOn": d.shift_date,
        },
        "AllergyIntolerance": {
            "clinicalStatus": status,
            "verificationStatus": status,
            "code": code,
            "patient": d.reference,
            "recordedDate": d.shift_date,
        },
    }


CONFIG_VERSION = "1"


def config_fingerprint() -> dict[str, Any]:
    """A canonical description of what this de-identifier keeps and how; its SHA-256 goes into lineage."""
    specs = _specs(_Deidentifier(b"fingerprint", "", date(2000, 1, 1)))
    return {
        "version": CONFIG_VERSION,
        "keep": {kind: sorted(spec) for kind, spec in sorted(specs.items())},
        "Patient": {"keep": ["gender"], "birthDate": f"age in years, capped at {AGE_CAP}", "address": "ZIP3"},
        "restricted_zip3": sorted(RESTRICTED_ZIP3),
        "ids": "HMAC-SHA256",
        "dates": "per-patient keyed shift",
    }


def config_sha256() -> str:
    return hashlib.sha256(json.dumps(config_fingerprint(), sort_keys=True).encode()).hexdigest()


def _resources(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("not a FHIR Bundle with entries")
    return [
        e["resource"] for e in entries if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
    ]


def deidentify_bundle(bundle: Mapping[str, Any], *, key: bytes, today: date | None = None) -> DeidResult:
    """De-identify a Bundle holding exactly one Patient and their clinical resources.

    Resources of other types (encounters, claims, documents, ...) are dropped whole and counted.
    """
    today = today or datetime.now().date()
    resources = _resources(bundle)
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise ValueError(f"expected exactly one Patient in the Bundle, found {len(patients)}")
    d = _Deidentifier(key, str(patients[0].get("id", "")), today)
    specs = _specs(d)
    kept = [d.patient(patients[0])]
    for r in resources:
        kind = r.get("resourceType")
        if kind in specs:
            kept.append(d.clinical(r, specs[kind]))
        elif kind != "Patient":
            d.counts[f"resource.{kind}:redact"] += 1
    out = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in kept]}
    return DeidResult(bundle=out, patient=kept[0]["id"], counts=d.counts)
