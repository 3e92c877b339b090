"""A CDS client names the user its cards are shown to (`context.userId`), and feedback is credited to
that user. A deployment says which practitioners each client may speak for; others are refused with
403, the store records which client asserted each user (pseudonymised), and only that client may
report the card's outcome (issue 20, finding 11)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from clinrlhf.identity import Principal, mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store
from clinrlhf.store.models import Card, Case, Feedback
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.cds.attribution import may_speak_for

SERVICE = "/cds-services/clinrlhf-treatment"
HOOK_INSTANCE = str(uuid.uuid5(uuid.NAMESPACE_URL, "clinrlhf-test/client-attribution"))
GRANTS = {"ehr-a": ["Practitioner/ward-a-*"], "ehr-b": ["Practitioner/ward-b-1"]}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path) -> Settings:
    home = tmp_path_factory.mktemp("attribution")
    return Settings(
        home=home, policy=policy_dir, database_url=None, cds_client_practitioners=json.dumps(GRANTS)
    )


@pytest.fixture(scope="module")
def client(settings: Settings, live_server) -> Iterator[httpx.Client]:
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def as_client(settings: Settings, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, role='cds-client', sub=sub)}"}


def call(
    client: httpx.Client, settings: Settings, sub: str, user: str | None, world: World, patient_view
) -> httpx.Response:
    patient = generate_patients(world, 1, seed=1101)[0]
    request = patient_view(patient.bundle, user=user or "")
    # The service seeds its sampled suggestions with the hookInstance, and the test policy is
    # untrained: with a random one (as patient_view sends) whether any suggestion names a drug, and
    # so whether there is a card, was chance. A fixed one makes the cards the same on every run.
    request["hookInstance"] = HOOK_INSTANCE
    if user is None:
        del request["context"]["userId"]
    return client.post(SERVICE, json=request, headers=as_client(settings, sub))


def count(settings: Settings, model: type) -> int:
    with consistent_read(deployment_store(settings)) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    ("sub", "user"),
    [
        ("ehr-a", "Practitioner/ward-b-1"),  # another ward's practitioner
        ("ehr-a", "Practitioner/ward-a"),  # the pattern needs a suffix
        ("ehr-b", "Practitioner/ward-b-2"),
        ("ehr-c", "Practitioner/ward-a-1"),  # a client the setting does not name speaks for nobody
    ],
)
def test_a_client_naming_a_practitioner_it_may_not_speak_for_is_refused_with_403(
    client, settings, world, patient_view, sub: str, user: str
) -> None:
    before = count(settings, Case)
    response = call(client, settings, sub, user, world, patient_view)
    assert response.status_code == 403, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert user not in response.text
    assert count(settings, Case) == before  # refused before anything was stored


def test_the_store_records_which_client_asserted_the_user_pseudonymised(
    client, settings, world, patient_view
) -> None:
    response = call(client, settings, "ehr-a", "Practitioner/ward-a-7", world, patient_view)
    assert response.status_code == 200, response.text
    assert call(client, settings, "ehr-b", "Practitioner/ward-b-1", world, patient_view).status_code == 200
    assert call(client, settings, "ehr-c", None, world, patient_view).status_code == 200  # no user asserted
    uuid = response.json()["cards"][0]["uuid"]
    with consistent_read(deployment_store(settings)) as session:
        clients = set(session.scalars(select(Card.client)))
        mine = session.scalar(select(Card.client).where(Card.id == uuid))
    assert len(clients) == 3 and None not in clients  # one pseudonym per client
    assert mine is not None and len(mine) == 64 and "ehr" not in mine


def test_only_the_client_a_card_was_issued_to_may_report_its_outcome(
    client, settings, world, patient_view
) -> None:
    card = call(client, settings, "ehr-a", "Practitioner/ward-a-8", world, patient_view).json()["cards"][0]
    entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-06-01T00:00:00Z"}
    before = count(settings, Feedback)
    other = client.post(
        f"{SERVICE}/feedback", json={"feedback": [entry]}, headers=as_client(settings, "ehr-b")
    )
    assert other.status_code == 403 and other.json()["resourceType"] == "OperationOutcome"
    assert count(settings, Feedback) == before
    own = client.post(f"{SERVICE}/feedback", json={"feedback": [entry]}, headers=as_client(settings, "ehr-a"))
    assert own.json() == {"stored": 1, "duplicates": 0}
    with consistent_read(deployment_store(settings)) as session:
        card_client = session.scalar(select(Card.client).where(Card.id == card["uuid"]))
        feedback_client = session.scalar(select(Feedback.client).where(Feedback.card_id == card["uuid"]))
    assert feedback_client == card_client is not None


def test_unset_the_setting_leaves_development_unrestricted_and_production_closed(tmp_path: Path) -> None:
    principal = Principal(sub="ehr", role="cds-client", scopes=frozenset(), issuer="x")
    development = Settings(home=tmp_path, env="development")
    production = Settings(home=tmp_path, env="production")
    assert may_speak_for(development, principal.sub, "Practitioner/anyone")
    assert not may_speak_for(production, principal.sub, "Practitioner/anyone")


def test_a_malformed_setting_is_refused_when_settings_are_read(tmp_path: Path) -> None:
    for bad in ("not json", '["Practitioner/1"]', '{"ehr": "Practitioner/1"}'):
        with pytest.raises(ValueError, match="CDS_CLIENT_PRACTITIONERS|JSON|json"):
            Settings(home=tmp_path, cds_client_practitioners=bad)
