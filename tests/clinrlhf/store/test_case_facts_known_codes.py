"""A stored case's facts hold only codes the world knows (issue 19).

De-identification keeps a code when it has the shape of its code system (a SNOMED CT id with a
Verhoeff check digit, a LOINC code with its mod-10 check digit, an RxNorm id of up to 7 digits). A
shape admits codes nobody assigned, so an identifier that happens to fit one ("1234567" as an RxNorm
id, a Verhoeff-valid 9-digit number as a SNOMED CT id) would survive de-identification; what reaches
the store is narrower still: only the world's own codes.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from clinrlhf.store import deidentify_case
from clinrlhf.world import load_world
from clinrlhf.world.patients import generate_patients
from privacy.deid.codes import loinc, rxnorm, snomed_concept

TODAY = date(2026, 3, 1)
KEY = b"k" * 32
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
# Numbers that fit a code system's shape but are no code of the world: a 7-digit number (a local
# phone number, an MRN) as an RxNorm id, a Verhoeff-valid 9-digit number as a SNOMED CT id, and a
# LOINC code with a valid check digit.
PLANTED_RXNORM = "5550142"
PLANTED_SNOMED = "123456001"
PLANTED_LOINC = "12345-5"


def _with_planted_codes(bundle: dict[str, Any]) -> dict[str, Any]:
    subject = {"reference": f"Patient/{bundle['entry'][0]['resource']['id']}"}
    active = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    }
    planted = [
        {"resourceType": "Condition", "id": "c-x", "subject": subject, "clinicalStatus": active,
         "code": {"coding": [{"system": SNOMED, "code": PLANTED_SNOMED}]}},
        {"resourceType": "AllergyIntolerance", "id": "a-x", "patient": subject,
         "code": {"coding": [{"system": SNOMED, "code": PLANTED_SNOMED}]}},
        {"resourceType": "MedicationRequest", "id": "m-x", "status": "active", "intent": "order",
         "subject": subject, "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": PLANTED_RXNORM}]}},
        {"resourceType": "Observation", "id": "o-x", "status": "final", "subject": subject,
         "code": {"coding": [{"system": LOINC, "code": PLANTED_LOINC}]},
         "valueQuantity": {"value": 5550142, "unit": "mg/dL"}, "effectiveDateTime": "2026-02-01"},
    ]  # fmt: skip
    return {**bundle, "entry": [*bundle["entry"], *({"resource": r} for r in planted)]}


def test_the_planted_codes_fit_their_shapes_so_only_the_world_can_keep_them_out() -> None:
    assert snomed_concept(PLANTED_SNOMED) and loinc(PLANTED_LOINC) and rxnorm(PLANTED_RXNORM)


def test_a_stored_case_holds_no_code_the_world_does_not_know() -> None:
    world = load_world()
    patient = generate_patients(world, 1, seed=11, today=TODAY)[0]
    case = deidentify_case(_with_planted_codes(patient.bundle), key=KEY, today=TODAY)
    stored = case.facts.to_json()
    for code in (PLANTED_RXNORM, PLANTED_SNOMED, PLANTED_LOINC):
        assert code not in stored
    known = (
        {c for f in world.findings.values() for c in (*f.snomed, *f.loinc)}
        | {t.snomed for t in world.targets.values()}
        | {d.rxnorm for d in world.drugs.values()}
    )
    facts = json.loads(stored)
    held = {*facts["conditions"], *facts["allergies"], *facts["labs"], *facts["medications"]}
    assert held <= known


def test_the_worlds_own_codes_are_all_kept() -> None:
    world = load_world()
    for patient in generate_patients(world, 5, seed=3, today=TODAY):
        assert deidentify_case(patient.bundle, key=KEY, today=TODAY).facts == patient.facts
