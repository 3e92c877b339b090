"""CDS Hooks feedback's override reason: nothing free-form from a feedback body reaches the store
(issue 20, finding 1). A code of this service's table (`clinrlhf.store.override_reasons`) is stored;
a client's own reason (another system, which CDS Hooks 3.0 allows) counts the override without
being stored; a code claimed in our system that it does not define is refused (issue 24)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store
from clinrlhf.store.models import Feedback
from clinrlhf.store.override_reasons import is_known
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
PHI = "John Smith SSN 123-45-6789"


@pytest.fixture(scope="module")
def card(server, auth, patient_view, world: World) -> dict:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for patient in generate_patients(world, 20, seed=207):
            response = client.post(SERVICE, json=patient_view(patient.bundle), headers=auth("cds-client"))
            if cards := response.json()["cards"]:
                return dict(cards[0])
    raise AssertionError("no card in 20 patients")


def overridden(card: str, reason: dict | None, when: str = "2026-05-01T10:00:00Z") -> dict:
    entry: dict = {"card": card, "outcome": "overridden", "outcomeTimestamp": when}
    if reason is not None:
        entry["overrideReason"] = {"reason": reason, "userComment": f"{PHI} asked for this"}
    return {"feedback": [entry]}


def stored_reasons(settings: Settings) -> list[tuple[str | None, str | None]]:
    with consistent_read(deployment_store(settings)) as session:
        query = select(Feedback.override_reason_system, Feedback.override_reason_code)
        return [(system, code) for system, code in session.execute(query)]


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param({"system": "OFFERED", "code": PHI}, id="phi-in-code"),
        pytest.param({"system": "OFFERED", "code": "x" * 100}, id="code-longer-than-its-column"),
        pytest.param({"code": "nonsense"}, id="code-without-system"),
    ],
)
def test_a_code_our_system_does_not_define_is_refused_and_never_stored(
    client: httpx.Client, auth, card: dict, api_settings: Settings, reason: dict
) -> None:
    offered_system = card["overrideReasons"][0]["system"]
    reason = {k: offered_system if v == "OFFERED" else v for k, v in reason.items()}
    response = client.post(
        f"{SERVICE}/feedback", json=overridden(card["uuid"], reason), headers=auth("cds-client")
    )
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "123-45-6789" not in response.text and "John" not in response.text
    for system, code in stored_reasons(api_settings):
        assert "123-45-6789" not in f"{system}{code}"
        assert code is None or len(code) <= 64


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param({"system": PHI, "code": "patient-refuses"}, id="phi-in-system"),
        pytest.param({"system": "https://example.org/reasons", "code": PHI}, id="foreign-system"),
    ],
)
def test_a_clients_own_reason_counts_the_outcome_but_is_never_stored(
    client: httpx.Client, auth, card: dict, api_settings: Settings, reason: dict
) -> None:
    """CDS Hooks 3.0: "A CDS Client MAY augment the override reasons presented to the user with its
    own reasons". The override is stored; the reason, which this service cannot read, is not."""
    before = len(stored_reasons(api_settings))
    body = overridden(card["uuid"], reason, when=f"2026-05-04T10:00:0{len(reason['system']) % 10}Z")
    response = client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client"))
    assert response.status_code == 200, response.text
    assert "123-45-6789" not in response.text
    stored = stored_reasons(api_settings)
    assert len(stored) == before + 1
    assert all("123-45-6789" not in f"{system}{code}" for system, code in stored)
    assert all(
        system is None or system.startswith(("http://terminology.hl7.org/", "https://clinrlhf.dev/"))
        for system, _ in stored
    )


def test_every_reason_the_card_offered_is_accepted_and_stored_as_offered(
    client: httpx.Client, auth, card: dict, api_settings: Settings
) -> None:
    offered = card["overrideReasons"]
    assert offered, "cards offer override reasons"
    for i, coding in enumerate(offered):
        body = overridden(card["uuid"], coding, when=f"2026-05-02T10:00:{i:02d}Z")
        response = client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client"))
        assert response.status_code == 200, response.text
    stored = set(stored_reasons(api_settings))
    assert {(c["system"], c["code"]) for c in offered} <= stored
    # Whatever any test stored (cards of before 3.0 offered other codes): only codes of the table.
    assert all(is_known(system, code) for system, code in stored if code is not None)


def test_an_offered_code_sent_without_its_system_is_stored_with_the_offered_system(
    client: httpx.Client, auth, card: dict, api_settings: Settings
) -> None:
    coding = card["overrideReasons"][0]
    before = stored_reasons(api_settings)
    body = overridden(card["uuid"], {"code": coding["code"]}, when="2026-05-03T10:00:00Z")
    assert client.post(f"{SERVICE}/feedback", json=body, headers=auth("cds-client")).status_code == 200
    added = stored_reasons(api_settings)
    for row in before:
        added.remove(row)
    assert added == [(coding["system"], coding["code"])]
