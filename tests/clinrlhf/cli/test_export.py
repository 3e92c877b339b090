"""`clinrlhf export`: a versioned NDJSON snapshot of the de-identified judgments, its SHA-256, a
manifest, and an audit event that names the snapshot."""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from clinrlhf.cli import CLIError, export
from clinrlhf.feedback.canonical import canonical_judgments
from clinrlhf.feedback.judgment import Judgment, snapshot_sha256
from clinrlhf.settings import load_settings
from clinrlhf.store import (
    ReviewEntry,
    add_card,
    add_case,
    deidentify_case,
    deployment_store,
    export_judgments,
    record_audit,
    record_review,
    transaction,
    verify_audit,
)
from clinrlhf.store.models import AuditEvent
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world

KEY, TODAY = b"e" * 32, date(2026, 3, 1)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLINRLHF_DATABASE_URL", raising=False)
    return tmp_path / "home"


def seed_review(home: Path) -> dict:
    """One reviewed card; returns the patient's raw bundle (full of PHI) for leak checks."""
    patient = generate_patients(load_world(), 1, seed=9, today=TODAY)[0]
    with transaction(deployment_store(load_settings())) as session:
        case, _ = add_case(session, deidentify_case(patient.bundle, key=KEY, today=TODAY), source="cds")
        card = add_card(
            session,
            case_id=case.id,
            target="hypertension",
            prompt="treat hypertension ->",
            model_version="m@1",
            suggestions=[("lisinopril", "lisinopril 10 mg"), ("amlodipine", "amlodipine 5 mg")],
        )
        a, b = (s.id for s in card.suggestions)
        review, _ = record_review(
            session,
            ReviewEntry(card=card.id, suggestion_a=a, suggestion_b=b, choice="b", rating_a=2, rating_b=5),
            clinician="c1",
        )
        for kind, row in (("Case", case), ("Card", card), ("QuestionnaireResponse", review)):
            record_audit(session, actor="test", action="C", entity_type=kind, entity_id=row.id)
    return patient.bundle


def run(*argv: str) -> None:
    parser = argparse.ArgumentParser(prog="clinrlhf")
    export.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    assert args.func(args) == 0


def test_export_writes_ndjson_its_sha256_and_a_manifest(home: Path, capsys) -> None:
    bundle = seed_review(home)
    run()
    manifest = json.loads(capsys.readouterr().out)
    out = home / "exports"
    ndjson = (out / manifest["file"]).read_bytes()
    assert manifest["file"] == f"judgments-{manifest['version']}.ndjson"
    assert manifest["version"].endswith(manifest["sha256"][:12])
    assert hashlib.sha256(ndjson).hexdigest() == manifest["sha256"]
    assert (out / f"{manifest['file']}.sha256").read_text() == f"{manifest['sha256']}  {manifest['file']}\n"
    assert json.loads((out / f"judgments-{manifest['version']}.json").read_text()) == manifest
    judgments = [Judgment.from_dict(json.loads(line)) for line in ndjson.splitlines()]
    assert [j.kind for j in judgments] == ["pairwise", "rating"]
    assert manifest["judgments"] == 2 and manifest["kinds"] == {"pairwise": 1, "rating": 1}
    assert manifest["format"] == "clinrlhf.judgments.v1"
    with deployment_store(load_settings())() as session:
        training = canonical_judgments(export_judgments(session))  # the order and card names it hashes
        assert snapshot_sha256(training) == manifest["sha256"]
    family = bundle["entry"][0]["resource"]["name"][0]["family"]
    assert family.encode() not in ndjson
    assert not list(out.glob(".*.partial"))


def test_each_export_is_an_audit_event_naming_the_snapshot(home: Path, capsys) -> None:
    seed_review(home)
    run()
    first = json.loads(capsys.readouterr().out)
    run("--out", str(home / "elsewhere"))
    second = json.loads(capsys.readouterr().out)
    assert second["sha256"] == first["sha256"]  # same store, same bytes
    assert (home / "elsewhere" / second["file"]).exists()
    with deployment_store(load_settings())() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "E")).all()
        assert verify_audit(session).ok
    assert [(e.entity_type, e.entity_id, e.entity_sha256, e.actor) for e in events] == [
        ("Snapshot", first["version"], first["sha256"], "cli"),
        ("Snapshot", second["version"], second["sha256"], "cli"),
    ]


def test_an_empty_store_exports_an_empty_snapshot(home: Path, capsys) -> None:
    run()
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["judgments"] == 0 and manifest["sha256"] == hashlib.sha256(b"").hexdigest()


def test_an_unwritable_folder_is_one_line_and_publishes_nothing(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CLIError, match="cannot create"):
        run("--out", str(blocker / "sub"))
