"""A synthetic patient generator that writes valid FHIR R4 bundles, identifiers and all.

The patients carry realistic-looking PHI (names, MRNs, addresses, phone numbers, birth dates) on
purpose: everything downstream must de-identify them before anything is stored.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from clinrlhf.world.facts import (
    CDC_RACE_ETHNICITY,
    LOINC,
    NULL_FLAVOR,
    OMB_ETHNICITY,
    OMB_RACE,
    RXNORM,
    SNOMED,
    US_CORE_ETHNICITY,
    US_CORE_RACE,
    PatientFacts,
    facts_from_bundle,
)
from clinrlhf.world.scoring import targets_of
from clinrlhf.world.world import World

_FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Wei",
    "Olga",
    "Carlos",
    "Fatima",
    "John",
    "Priya",
    "Kenji",
    "Amara",
    "Lucas",
    "Sofia",
    "Omar",
    "Hannah",
    "Dmitri",
    "Grace",
    "Mateo",
    "Ingrid",
    "Tunde",
]
_LAST = [
    "Okafor",
    "Schmidt",
    "Nguyen",
    "Garcia",
    "Kowalski",
    "Haddad",
    "Johansson",
    "Tanaka",
    "Mensah",
    "O'Brien",
    "Patel",
    "Rossi",
    "Novak",
    "Silva",
    "Ibrahim",
    "Larsen",
    "Moreau",
    "Kim",
    "Adeyemi",
    "Walsh",
]
_STREETS = ["Maple Street", "Oak Avenue", "Harbor Road", "Elm Court", "Sunset Boulevard", "Mill Lane"]
_CITIES = [
    ("Springfield", "MA", "01103"),
    ("Riverside", "CA", "92501"),
    ("Madison", "WI", "53703"),
    ("Salem", "OR", "97301"),
    ("Austin", "TX", "78701"),
    ("Dover", "DE", "19901"),
]

# How often each untreated problem is the reason for the visit.
TARGET_WEIGHTS = {
    "hypertension": 0.22,
    "diabetes": 0.17,
    "atrial_fibrillation": 0.15,
    "pneumonia": 0.16,
    "cystitis": 0.16,
    "hyperlipidemia": 0.05,
    "hypothyroidism": 0.04,
    "depression": 0.05,
}
COMORBIDITY_RATE = {
    "diabetes": 0.35,
    "hypertension": 0.35,
    "heart_failure": 0.15,
    "stroke": 0.12,
    "myocardial_infarction": 0.12,
}
PREGNANCY_RATE = 0.55  # among women aged 18-44
PENICILLIN_ALLERGY_RATE = 0.4
LOW_EGFR_RATE = 0.4
HIGH_POTASSIUM_RATE = 0.30
# Race and ethnicity shares close to the 2020 US Census (race alone; "some other race" and declined
# answers become unknown, as US Core codes them). Multiracial patients get two OMB categories.
RACE_WEIGHTS = {
    "white": 0.616,
    "black": 0.124,
    "asian": 0.060,
    "aian": 0.011,
    "nhpi": 0.002,
    "multiracial": 0.102,
    "unknown": 0.085,
}
ETHNICITY_WEIGHTS = {"hispanic": 0.187, "not_hispanic": 0.783, "unknown": 0.030}
_UNKNOWN = {"system": NULL_FLAVOR, "code": "UNK", "display": "Unknown"}


@dataclass(frozen=True)
class SyntheticPatient:
    bundle: dict  # a FHIR R4 collection Bundle with identifiers (PHI)
    facts: PatientFacts
    targets: tuple[str, ...]


def _coding(system: str, code: str, display: str = "") -> dict:
    return {
        "coding": [{"system": system, "code": code, **({"display": display} if display else {})}],
        **({"text": display} if display else {}),
    }


class _BundleWriter:
    def __init__(self, rng: random.Random, patient_id: str, today: date) -> None:
        self.rng, self.pid, self.today = rng, patient_id, today
        self.entries: list[dict] = []

    def add(self, resource: dict) -> None:
        rid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        resource = {"id": rid, **resource}
        self.entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": resource})

    def days_ago(self, lo: int, hi: int) -> str:
        return (self.today - timedelta(days=self.rng.randint(lo, hi))).isoformat()

    def subject(self) -> dict:
        return {"reference": f"urn:uuid:{self.pid}"}

    def condition(self, code: str, display: str) -> None:
        self.add(
            {
                "resourceType": "Condition",
                "subject": self.subject(),
                "clinicalStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
                ),
                "verificationStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
                ),
                "code": _coding(SNOMED, code, display),
                "onsetDateTime": self.days_ago(20, 2000),
            }
        )

    def allergy(self, code: str, display: str) -> None:
        self.add(
            {
                "resourceType": "AllergyIntolerance",
                "patient": self.subject(),
                "clinicalStatus": _coding(
                    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"
                ),
                "code": _coding(SNOMED, code, display),
                "recordedDate": self.days_ago(100, 3000),
            }
        )

    def observation(self, code: str, display: str, value: float, unit: str) -> None:
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "subject": self.subject(),
                "category": [
                    _coding("http://terminology.hl7.org/CodeSystem/observation-category", "laboratory")
                ],
                "code": _coding(LOINC, code, display),
                "effectiveDateTime": self.days_ago(1, 60),
                "valueQuantity": {
                    "value": round(value, 1),
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )

    def medication(self, rxnorm: str, name: str) -> None:
        self.add(
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "subject": self.subject(),
                "medicationCodeableConcept": _coding(RXNORM, rxnorm, name),
                "authoredOn": self.days_ago(30, 900),
            }
        )


def _omb_coding(codes: dict[str, tuple[str, str]], group: str) -> dict:
    code = next(c for c, (g, _) in codes.items() if g == group)
    return {"system": CDC_RACE_ETHNICITY, "code": code, "display": codes[code][1]}


def _race_extension(rng: random.Random) -> dict:
    group = rng.choices(list(RACE_WEIGHTS), list(RACE_WEIGHTS.values()))[0]
    if group == "unknown":
        codings = [_UNKNOWN]
    elif group == "multiracial":
        single = [g for g in RACE_WEIGHTS if g not in ("multiracial", "unknown")]
        first = rng.choices(single, [RACE_WEIGHTS[g] for g in single])[0]
        second = rng.choice([g for g in single if g != first])
        codings = [_omb_coding(OMB_RACE, g) for g in sorted((first, second))]
    else:
        codings = [_omb_coding(OMB_RACE, group)]
    text = " and ".join(c["display"] for c in codings)
    parts = [{"url": "ombCategory", "valueCoding": c} for c in codings]
    return {"url": US_CORE_RACE, "extension": [*parts, {"url": "text", "valueString": text}]}


def _ethnicity_extension(rng: random.Random) -> dict:
    group = rng.choices(list(ETHNICITY_WEIGHTS), list(ETHNICITY_WEIGHTS.values()))[0]
    coding = _UNKNOWN if group == "unknown" else _omb_coding(OMB_ETHNICITY, group)
    parts = [{"url": "ombCategory", "valueCoding": coding}, {"url": "text", "valueString": coding["display"]}]
    return {"url": US_CORE_ETHNICITY, "extension": parts}


def _demographic_extensions(pid: str) -> list[dict]:
    """US Core race and ethnicity, drawn from an RNG of their own, seeded by the patient's id.

    The id already follows from the cohort seed, so the draw is deterministic per seed; and it never
    touches the generator's main stream, so every other field of every patient (and thus every
    cohort, test and measured result made before these extensions existed) stays exactly as it was.
    """
    rng = random.Random(f"us-core-demographics:{pid}")
    return [_race_extension(rng), _ethnicity_extension(rng)]


def _patient_resource(rng: random.Random, pid: str, sex: str, birth: date) -> dict:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state, zipcode = rng.choice(_CITIES)
    return {
        "resourceType": "Patient",
        "id": pid,
        "extension": _demographic_extensions(pid),
        "gender": sex,
        "birthDate": birth.isoformat(),
        "identifier": [
            {
                "system": "http://hospital.example.org/mrn",
                "value": f"MRN{rng.randint(10**6, 10**7 - 1)}",
                "type": _coding(
                    "http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"
                ),
            }
        ],
        "name": [{"use": "official", "family": last, "given": [first]}],
        "telecom": [
            {
                "system": "phone",
                "value": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                "use": "home",
            }
        ],
        "address": [
            {
                "line": [f"{rng.randint(1, 999)} {rng.choice(_STREETS)}"],
                "city": city,
                "state": state,
                "postalCode": zipcode,
                "country": "US",
            }
        ],
    }


def _pick_targets(rng: random.Random) -> list[str]:
    keys, weights = list(TARGET_WEIGHTS), list(TARGET_WEIGHTS.values())
    first = rng.choices(keys, weights)[0]
    if rng.random() < 0.2:
        second = rng.choices(keys, weights)[0]
        return [first] if second == first else [first, second]
    return [first]


def generate_patient(world: World, rng: random.Random, today: date) -> SyntheticPatient:
    """One patient with 1-2 untreated target problems and the findings that modify their treatment."""
    pid = str(uuid.UUID(int=rng.getrandbits(128)))
    sex = rng.choice(["female", "male"])
    targets = _pick_targets(rng)
    pregnant = sex == "female" and "hyperlipidemia" not in targets and rng.random() < PREGNANCY_RATE
    age = rng.randint(18, 44) if pregnant else rng.randint(18, 97)
    birth = today - timedelta(days=age * 365 + rng.randint(30, 330))
    w = _BundleWriter(rng, pid, today)
    w.entries.append({"fullUrl": f"urn:uuid:{pid}", "resource": _patient_resource(rng, pid, sex, birth)})
    for key in targets:
        w.condition(world.targets[key].snomed, world.targets[key].display)
    if pregnant:
        w.condition(world.findings["pregnant"].snomed[0], "Normal pregnancy")
    for key, rate in COMORBIDITY_RATE.items():
        if key in targets or rng.random() >= rate:
            continue
        w.condition(world.findings[key].snomed[0], world.findings[key].display)
        if key in world.targets:  # a treated comorbidity is not a target
            drug = world.drugs[world.targets[key].tiers[-1].drugs[0]]
            w.medication(drug.rxnorm, drug.key)
    if rng.random() < PENICILLIN_ALLERGY_RATE:
        w.allergy(world.findings["penicillin_allergy"].snomed[0], "Allergy to penicillin")
    egfr = rng.uniform(12, 29) if rng.random() < LOW_EGFR_RATE else rng.uniform(45, 110)
    w.observation(world.findings["egfr_lt_30"].loinc[0], "eGFR", egfr, "mL/min/{1.73_m2}")
    potassium = rng.uniform(5.2, 6.2) if rng.random() < HIGH_POTASSIUM_RATE else rng.uniform(3.6, 4.9)
    w.observation(world.findings["potassium_gt_5"].loinc[0], "Potassium", potassium, "mmol/L")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": w.entries}
    facts = facts_from_bundle(bundle, on=today)
    return SyntheticPatient(bundle=bundle, facts=facts, targets=tuple(targets_of(world, facts)))


def generate_patients(world: World, n: int, seed: int, today: date | None = None) -> list[SyntheticPatient]:
    """`n` patients, reproducible for a given seed; every patient has at least one target."""
    rng, today = random.Random(seed), today or date.today()
    patients: list[SyntheticPatient] = []
    while len(patients) < n:
        patient = generate_patient(world, rng, today)
        if patient.targets:
            patients.append(patient)
    return patients
