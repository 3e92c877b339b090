"""Every write, every read of feedback and every export is an audit event, and the trail verifies."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store, verify_audit
from clinrlhf.store.models import AuditEvent
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"


def events_since(settings: Settings, seq: int) -> list[tuple[str, str]]:
    with deployment_store(settings)() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq))
        return [(e.action, e.entity_type) for e in rows]


def head(settings: Settings) -> int:
    with deployment_store(settings)() as session:
        return max(session.scalars(select(AuditEvent.seq)), default=0)


def test_writes_and_reads_of_feedback_are_audited(
    client: httpx.Client, auth, patient_view, world: World, api_settings: Settings
) -> None:
    card = None
    for patient in generate_patients(world, 20, seed=33):
        start = head(api_settings)
        cards = client.post(SERVICE, json=patient_view(patient.bundle), headers=auth("cds-client")).json()[
            "cards"
        ]
        card = next((c for c in cards if len(c["suggestions"]) == 2), None)
        if card:
            break
    assert card is not None
    assert events_since(api_settings, start) == [("C", "Case")] + [("C", "Card")] * len(cards)

    start = head(api_settings)
    entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-02-02T00:00:00Z"}
    client.post(f"{SERVICE}/feedback", json={"feedback": [entry]}, headers=auth("cds-client"))
    client.post(f"{SERVICE}/feedback", json={"feedback": [entry]}, headers=auth("cds-client"))  # a duplicate
    assert events_since(api_settings, start) == [("C", "Feedback")]  # a duplicate writes nothing

    start = head(api_settings)
    a, b = (s["uuid"] for s in card["suggestions"])
    items = [
        {"linkId": k, "answer": [{"valueString": v}]}
        for k, v in (("card", card["uuid"]), ("suggestion-a", a), ("suggestion-b", b))
    ]
    body = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review",
        "item": [*items, {"linkId": "rating-b", "answer": [{"valueInteger": 2}]}],
    }
    created = client.post(
        "/fhir/QuestionnaireResponse", json=body, headers=auth("clinician", "application/fhir+json")
    )
    client.get(created.headers["location"], headers=auth("compliance"))
    client.get("/fhir/QuestionnaireResponse/no-such-review", headers=auth("compliance"))  # 404: nothing read
    assert events_since(api_settings, start) == [
        ("C", "QuestionnaireResponse"),
        ("R", "QuestionnaireResponse"),
    ]

    with consistent_read(deployment_store(api_settings)) as session:
        report = verify_audit(session)
    assert report.ok, report.problem
