"""`clinrlhf audit verify` passes an intact trail and fails, in one line naming the first bad entry,
when anyone edits or deletes rows below the service: audit events, or the feedback they vouch for;
also when they recompute the whole chain without the audit key, or cut its end and the witness."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import mlflow
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from clinrlhf.cli import audit
from clinrlhf.lineage.audit_anchors import anchor_audit_head
from clinrlhf.lineage.runs import configure_mlflow
from clinrlhf.settings import load_settings
from clinrlhf.store import (
    FeedbackEntry,
    ReviewEntry,
    add_card,
    add_case,
    deidentify_case,
    deployment_store,
    export_snapshot,
    make_engine,
    open_store,
    record_audit,
    record_feedback,
    record_review,
    transaction,
)
from clinrlhf.store.audit import GENESIS, event_hash
from clinrlhf.store.digest import row_sha256
from clinrlhf.store.models import AuditEvent, Feedback, Review
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world

POSTGRES_URL = os.environ.get("CLINRLHF_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + ([pytest.param("postgresql", marks=pytest.mark.postgres)] if POSTGRES_URL else [])
KEY, TODAY = b"k" * 32, date(2026, 3, 1)


@pytest.fixture(params=BACKENDS)
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'home' / 'clinrlhf.db'}"
        monkeypatch.setenv("CLINRLHF_DATABASE_URL", url)
        yield url
        return
    assert POSTGRES_URL
    schema = f"audit_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    monkeypatch.setenv("CLINRLHF_DATABASE_URL", url)
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def seed(url: str) -> dict[str, str]:
    """A case, a card, one feedback entry and one review, each audited as the service audits them."""
    patient = generate_patients(load_world(), 1, seed=3, today=TODAY)[0]
    with transaction(deployment_store(load_settings())) as session:
        case, _ = add_case(session, deidentify_case(patient.bundle, key=KEY, today=TODAY), source="cds")
        record_audit(session, actor="cds-client:x", action="C", entity_type="Case", entity_id=case.id)
        card = add_card(
            session,
            case_id=case.id,
            target="hypertension",
            prompt="treat hypertension ->",
            model_version="m@1",
            suggestions=[("lisinopril", "lisinopril 10 mg"), ("amlodipine", "amlodipine 5 mg")],
        )
        record_audit(session, actor="cds-client:x", action="C", entity_type="Card", entity_id=card.id)
        a, b = (s.id for s in card.suggestions)
        feedback, _ = record_feedback(
            session,
            FeedbackEntry(card=card.id, outcome="accepted", accepted_suggestions=(a,)),
            clinician="c1",
            actor="cds-client:x",  # the write path appends the create event itself
        )
        review, _ = record_review(
            session, ReviewEntry(card=card.id, suggestion_a=a, suggestion_b=b, choice="a"), clinician="c2"
        )
        record_audit(
            session, actor="clinician:y", action="C", entity_type="QuestionnaireResponse", entity_id=review.id
        )
    return {"card": card.id, "feedback": feedback.id, "review": review.id}


def tamper(url: str, *statements: str) -> None:
    """What an attacker with database access does: switch off the append-only triggers, then edit."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
            conn.execute(text("PRAGMA foreign_keys = OFF"))
        else:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
            conn.execute(text("SET session_replication_role = replica"))  # no foreign key checks
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run `clinrlhf audit verify` in this process; returns (status, the one line it printed)."""
    parser = argparse.ArgumentParser(prog="clinrlhf")
    audit.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "verify", *argv])
    status = args.func(args)
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert printed.count("\n") == 1, printed
    return status, printed.strip()


def test_an_intact_trail_verifies_with_a_one_line_summary(store_url: str, capsys) -> None:
    seed(store_url)
    status, line = verify(capsys)
    assert status == 0
    assert (
        line.startswith("audit OK: 4 events, chain intact through seq")
        and "4 recorded rows unchanged" in line
    )


def test_an_empty_store_verifies(store_url: str, capsys) -> None:
    assert verify(capsys) == (0, "audit OK: the trail is empty, 0 recorded rows")


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            "UPDATE audit_events SET actor = 'someone-else' WHERE seq = {seq2}",
            "audit event seq {seq2} was changed",
        ),
        (
            "DELETE FROM audit_events WHERE seq = {seq2}",
            "audit event seq {seq3} does not follow the event before it",
        ),
    ],
    ids=["update", "delete"],
)
def test_an_edited_or_deleted_audit_event_is_named(
    store_url: str, capsys, statement: str, reason: str
) -> None:
    seed(store_url)
    engine = make_engine(store_url)
    with engine.connect() as conn:
        seqs = list(conn.scalars(text("SELECT seq FROM audit_events ORDER BY seq")))
    engine.dispose()
    names = {"seq2": seqs[1], "seq3": seqs[2]}
    tamper(store_url, statement.format(**names))
    status, line = verify(capsys)
    assert status == 1
    assert line.startswith(f"audit FAILED: {reason.format(**names)}")


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        (
            "UPDATE reviews SET choice = 'b' WHERE id = '{review}'",
            "Review {review} (created by audit event seq",
        ),
        ("UPDATE feedback SET has_comment = TRUE WHERE id = '{feedback}'", "Feedback {feedback} (created"),
        ("UPDATE suggestions SET text = 'warfarin 5 mg' WHERE card_id = '{card}'", "Card {card} (created"),
        ("DELETE FROM reviews WHERE id = '{review}'", "Review {review} (created by audit event seq"),
        ("DELETE FROM feedback WHERE id = '{feedback}'", "Feedback {feedback} (created by audit event seq"),
    ],
    ids=["update-review", "update-feedback", "update-suggestion", "delete-review", "delete-feedback"],
)
def test_an_edited_or_deleted_feedback_row_is_named(
    store_url: str, capsys, statement: str, reason: str
) -> None:
    ids = seed(store_url)
    tamper(store_url, statement.format(**ids))
    status, line = verify(capsys)
    assert status == 1
    assert line.startswith(f"audit FAILED: {reason.format(**ids)}")
    assert line.endswith("was deleted" if statement.startswith("DELETE") else "was changed")


def test_a_row_written_around_the_service_is_named(store_url: str, capsys) -> None:
    ids = seed(store_url)
    with transaction(deployment_store(load_settings())) as session:  # stored, but never audited
        row = Feedback(card_id=ids["card"], clinician="c9", outcome="overridden", idempotency_key="k" * 64)
        session.add(row)
    status, line = verify(capsys)
    assert (status, line) == (
        1,
        f"audit FAILED: Feedback {row.id} has no audit event: it was written around the service",
    )


def test_events_cut_from_the_end_are_caught_by_the_witness(store_url: str, capsys) -> None:
    seed(store_url)
    with transaction(deployment_store(load_settings())) as session:
        export_snapshot(session, actor="cli")
    assert verify(capsys)[0] == 0  # remembers the head: the export event
    tamper(store_url, "DELETE FROM audit_events WHERE action = 'E'")
    assert verify(capsys, "--no-witness")[0] == 0  # the shorter chain is valid on its own
    status, line = verify(capsys)
    assert status == 1 and "the head recorded by the last verification, is missing" in line


def test_the_installed_command_exits_non_zero_with_one_line(store_url: str, tmp_path: Path) -> None:
    ids = seed(store_url)
    tamper(store_url, f"DELETE FROM reviews WHERE id = '{ids['review']}'")
    done = subprocess.run(
        [sys.executable, "-m", "clinrlhf", "audit", "verify"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("audit FAILED: Review")


def test_a_chain_recomputed_without_the_audit_key_fails_even_with_a_rewritten_witness(
    store_url: str, capsys
) -> None:
    """The red team's rewrite: flip a review, recompute its digest, every later link and the
    witness with the published algorithm. Without the deployment's key the links do not verify."""
    ids = seed(store_url)
    assert verify(capsys)[0] == 0
    tamper(store_url, f"UPDATE reviews SET choice = 'b' WHERE id = '{ids['review']}'")
    attacker = open_store(store_url)  # the database and the code, but not the audit key
    with attacker() as session:
        review = session.get(Review, ids["review"])
        assert review is not None
        digest = row_sha256(review)
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    statements, prev = [], GENESIS
    for event in events:
        if event.entity_id == ids["review"]:
            event.entity_sha256 = digest
        event.prev_hash = prev
        event.hash = prev = event_hash(event)
        statements.append(
            f"UPDATE audit_events SET entity_sha256 = {'NULL' if event.entity_sha256 is None else repr(event.entity_sha256)}, "
            f"prev_hash = 'x{event.seq}', hash = 'y{event.seq}' WHERE seq = {event.seq}"
        )
    # Two passes, so the UNIQUE columns never collide mid-rewrite.
    statements += [
        f"UPDATE audit_events SET prev_hash = '{e.prev_hash}', hash = '{e.hash}' WHERE seq = {e.seq}"
        for e in events
    ]
    tamper(store_url, *statements)
    witness = load_settings().audit_anchor_path
    store = make_url(store_url).render_as_string(hide_password=True)
    witness.write_text(json.dumps({store: {"seq": events[-1].seq, "hash": events[-1].hash}}))
    status, line = verify(capsys)
    assert status == 1
    assert line.startswith(f"audit FAILED: audit event seq {events[0].seq} was changed")
    assert "audit key" in line


def test_events_cut_from_the_end_are_caught_by_an_mlflow_run_without_the_witness(
    store_url: str, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pipeline run records the head it saw; cutting below it fails with no witness at all."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    seed(store_url)
    settings = load_settings()
    store = deployment_store(settings)
    with transaction(store) as session:
        export_snapshot(session, actor="cli")
    configure_mlflow(settings)
    with mlflow.start_run() as run:
        head = anchor_audit_head(store)
    assert head is not None and head.seq == 5
    tamper(store_url, "DELETE FROM audit_events WHERE action = 'E'")
    status, line = verify(capsys, "--no-witness")
    assert status == 1
    assert f"the head recorded by MLflow run {run.info.run_id}, is missing" in line
