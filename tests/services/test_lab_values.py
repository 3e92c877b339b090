"""Lab values no patient can have (NaN, ±Infinity, negative, 1e308) are refused at the door with an
OperationOutcome, before a card is made or a case stored; and the store never writes non-standard
JSON (issue 20, finding 6)."""

from __future__ import annotations

import copy
import json
import math

import httpx
import pytest
from sqlalchemy import func, select

from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store
from clinrlhf.store.models import Case
from clinrlhf.world.facts import LOINC
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
EGFR, POTASSIUM = "33914-3", "2823-3"


def request_with_lab(patient_view, bundle: dict, loinc: str, raw_value: str) -> str:
    """A CDS request for the patient as JSON text, every `loinc` Observation's value replaced by
    `raw_value` verbatim (so that `NaN` or `1e999` reach the server exactly as an attacker sends them)."""
    marked = copy.deepcopy(bundle)
    found = 0
    for entry in marked["entry"]:
        resource = entry["resource"]
        codes = {
            c.get("code") for c in resource.get("code", {}).get("coding", []) if c.get("system") == LOINC
        }
        if resource["resourceType"] == "Observation" and loinc in codes:
            resource["valueQuantity"]["value"] = "@@VALUE@@"
            found += 1
    assert found, f"the patient has no {loinc} observation"
    return json.dumps(patient_view(marked)).replace('"@@VALUE@@"', raw_value)


def cases(settings: Settings) -> int:
    with consistent_read(deployment_store(settings)) as session:
        return session.scalar(select(func.count()).select_from(Case)) or 0


@pytest.fixture(scope="module")
def bundle(world: World) -> dict:
    return generate_patients(world, 1, seed=601)[0].bundle


@pytest.mark.parametrize(
    ("loinc", "raw"),
    [
        (EGFR, "NaN"),
        (EGFR, "Infinity"),
        (EGFR, "-Infinity"),
        (EGFR, "1e999"),  # Python's json reads this as inf
        (EGFR, "-5"),
        (EGFR, "1e308"),
        (EGFR, '"NaN"'),  # a string float() would read as nan
        (POTASSIUM, "-0.5"),
        (POTASSIUM, "1e308"),
        (POTASSIUM, "NaN"),
    ],
)
def test_an_impossible_lab_value_is_refused_with_an_operation_outcome_and_stores_nothing(
    client: httpx.Client, auth, patient_view, bundle: dict, api_settings: Settings, loinc: str, raw: str
) -> None:
    body = request_with_lab(patient_view, bundle, loinc, raw)
    before = cases(api_settings)
    response = client.post(SERVICE, content=body.encode(), headers=auth("cds-client", "application/json"))
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert cases(api_settings) == before


def test_plausible_lab_values_still_make_cards(
    client: httpx.Client, auth, patient_view, bundle: dict
) -> None:
    for raw in ("0", "12.5", "110"):
        body = request_with_lab(patient_view, bundle, EGFR, raw)
        response = client.post(SERVICE, content=body.encode(), headers=auth("cds-client", "application/json"))
        assert response.status_code == 200, response.text


def test_every_stored_case_is_standard_json(api_settings: Settings) -> None:
    """Whatever earlier tests sent, what the store holds parses under RFC 8259 (no NaN, no Infinity)."""

    def refuse(token: str) -> float:
        raise AssertionError(f"non-standard JSON constant {token} in the store")

    with consistent_read(deployment_store(api_settings)) as session:
        for facts, counts in session.execute(select(Case.facts, Case.deid_counts)):
            labs = json.loads(facts, parse_constant=refuse)["labs"]
            assert all(math.isfinite(v) for v in labs.values())
            json.dumps(counts, allow_nan=False)
