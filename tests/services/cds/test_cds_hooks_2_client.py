"""A CDS Hooks 2.0 client still works against the 3.0 service, where the two versions agree: its
request (SMART v1 scopes, no `fhirAuthorization.patient`), the cards it reads (every element 2.0
defines is there, with 2.0's meaning), and its feedback, including a reason from a card issued
before the service spoke 3.0. Fetching with v1 scopes (`patient/*.read`) is
tests/services/test_fhir_server_fetch.py's."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store, export_judgments
from clinrlhf.store.models import Feedback
from clinrlhf.store.override_reasons import LEGACY_SYSTEM
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
V1_AUTHORIZATION = {
    "access_token": "some-opaque-fhir-access-token",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "user/Patient.read user/Condition.read user/Observation.read user/MedicationRequest.read "
    "user/AllergyIntolerance.read",
    "subject": "cds-service4",
}
# What a 2.0 client reads of a card (CDS Hooks 2.0, "Card Attributes" and below).
CARD_2_0 = {"uuid", "summary", "indicator", "source", "suggestions", "selectionBehavior", "overrideReasons"}


@pytest.fixture(scope="module")
def card(server, auth, patient_view, world: World) -> dict:
    """A card for a 2.0-shaped request: v1 scopes, a fhirServer, and every prefetch key sent."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for patient in generate_patients(world, 20, seed=81):
            request = patient_view(patient.bundle) | {
                "fhirServer": "https://ehr.example.org/fhir",
                "fhirAuthorization": V1_AUTHORIZATION,
            }
            response = client.post(SERVICE, json=request, headers=auth("cds-client"))
            assert response.status_code == 200, response.text
            if cards := response.json()["cards"]:
                return dict(cards[0])
    raise AssertionError("no card in 20 patients")


def test_a_2_0_client_reads_every_card_element_it_knows(card: dict) -> None:
    assert card.keys() >= CARD_2_0
    assert card["selectionBehavior"] == "at-most-one" and card["indicator"] in ("info", "warning")
    for suggestion in card["suggestions"]:
        assert {"label", "uuid", "isRecommended", "actions"} <= suggestion.keys()
        for action in suggestion["actions"]:
            assert action["type"] == "create" and action["description"] and action["resource"]
    assert all({"system", "code", "display"} <= r.keys() for r in card["overrideReasons"])


def test_a_2_0_client_reads_discovery(client: httpx.Client, auth) -> None:
    """3.0 adds `version` and `hookVersion`; what 2.0 defines is unchanged."""
    (service,) = client.get("/cds-services", headers=auth("cds-client")).json()["services"]
    assert service["hook"] == "patient-view" and service["id"] == "clinrlhf-treatment"
    assert isinstance(service["prefetch"], dict) and service["description"]


def test_2_0_feedback_is_stored_with_the_reasons_its_cards_offered(
    client: httpx.Client, auth, card: dict, api_settings: Settings
) -> None:
    url, headers = f"{SERVICE}/feedback", auth("cds-client")
    accepted = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-04-01T10:00:00Z",
    }
    offered = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "see note"},
        "outcomeTimestamp": "2026-04-01T10:01:00Z",
    }
    # A card issued before the upgrade offered the service's own codes; the client echoes one.
    earlier = {
        **offered,
        "overrideReason": {"reason": {"system": LEGACY_SYSTEM, "code": "contraindicated"}},
        "outcomeTimestamp": "2026-04-01T10:02:00Z",
    }
    response = client.post(url, json={"feedback": [accepted, offered, earlier]}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 3, "duplicates": 0}
    with consistent_read(deployment_store(api_settings)) as session:
        rows = session.scalars(select(Feedback).where(Feedback.card_id == card["uuid"])).all()
        assert {(r.override_reason_system, r.override_reason_code) for r in rows} >= {
            (LEGACY_SYSTEM, "contraindicated")
        }
        signals = {j.override_signal for j in export_judgments(session) if j.card == card["uuid"]}
    assert "clinical" in signals  # the earlier card's "contraindicated" keeps its meaning


def test_2_0_feedback_without_outcome_timestamp_is_refused_as_2_0_also_requires_it(
    client: httpx.Client, auth, card: dict
) -> None:
    """CDS Hooks 2.0 already made `outcomeTimestamp` REQUIRED, and a feedback body does not say
    which version sent it: no server-side default is invented (it would also make a retried entry
    look new to the idempotency key)."""
    entry = {"card": card["uuid"], "outcome": "overridden"}
    response = client.post(f"{SERVICE}/feedback", json={"feedback": [entry]}, headers=auth("cds-client"))
    assert response.status_code == 400
    assert "outcomeTimestamp" in response.json()["issue"][0]["diagnostics"]
