"""Refusals and bulk reads leave a trace in the audit trail.

The red team's ~150 refused requests (401/403/409/422/429) left no audit event, and the agreement
view read every judgment unrecorded. Refusals are counted by status and route template (never the
raw path) and appended as aggregated events while the service runs and when it stops; a read of
every judgment is an audit event naming who read.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import deployment_store
from clinrlhf.store.models import AuditEvent
from services.api.refusals import ENTITY_TYPE, RefusalCounter, entity_id

PLANTED = "Quibbleton-078051120"  # an identifier in a URL path must never reach the trail


def refusal_counts(settings: Settings) -> dict[str, int]:
    """(status route) -> count, summed over the aggregated refusal events."""
    counts: dict[str, int] = {}
    with deployment_store(settings)() as session:
        for event in session.scalars(select(AuditEvent).where(AuditEvent.entity_type == ENTITY_TYPE)):
            what, _, n = event.entity_id.rpartition(" x")
            counts[what] = counts.get(what, 0) + int(n)
    return counts


def test_every_refusal_is_counted_in_the_trail_by_route_never_by_path(
    live_server, tmp_path: Path, policy_dir: Path
) -> None:
    settings = Settings(home=tmp_path / "home", policy=policy_dir, database_url=None)
    clinician = mint_token(settings, role="clinician", sub="dr-a")
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(3):  # no token
            assert http.get("/cds-services").status_code == 401
        assert http.get("/compliance", headers={"Authorization": f"Bearer {clinician}"}).status_code == 403
        bad = http.post(
            "/fhir/QuestionnaireResponse",
            json={"resourceType": "QuestionnaireResponse", "status": 7},
            headers={"Authorization": f"Bearer {clinician}"},
        )
        assert bad.status_code in (400, 422)
        assert http.get(f"/fhir/Patient/{PLANTED}").status_code in (401, 404)
    counts = refusal_counts(settings)  # the server has stopped: everything counted is written
    assert counts["401 GET /cds-services"] == 3
    assert counts["403 GET /compliance"] == 1
    assert counts[f"{bad.status_code} POST /fhir/QuestionnaireResponse"] == 1
    assert sum(counts.values()) == 6
    with deployment_store(settings)() as session:
        stored = " ".join(e.entity_id + e.actor for e in session.scalars(select(AuditEvent)))
    assert PLANTED not in stored and "Quibbleton" not in stored


def test_a_flood_of_refusals_is_a_handful_of_events() -> None:
    counter = RefusalCounter()
    for _ in range(10_000):
        counter.count(429, "GET", "/review")
    assert counter.drain() == {(429, "GET", "/review"): 10_000}
    assert counter.drain() == {}
    long_route = "/x" * 60
    assert len(entity_id((422, "POST", long_route), 123_456)) == 64
    assert entity_id((422, "POST", long_route), 123_456).endswith(" x123456")


def test_reading_every_judgment_on_the_agreement_view_is_audited(
    live_server, tmp_path: Path, policy_dir: Path
) -> None:
    settings = Settings(home=tmp_path / "home", policy=policy_dir, database_url=None)
    officer = mint_token(settings, role="compliance", sub="officer-1")
    with live_server(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        page = http.get("/review/admin/agreement", headers={"Authorization": f"Bearer {officer}"})
        assert page.status_code == 200
    with deployment_store(settings)() as session:
        reads = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "R", AuditEvent.entity_id == "agreement-view")
            )
        )
    assert len(reads) == 1 and reads[0].actor.startswith("compliance:")
    assert "officer-1" not in reads[0].actor  # the pseudonym, never the raw subject
