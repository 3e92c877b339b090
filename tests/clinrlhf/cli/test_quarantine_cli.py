"""Quarantine state as a replay of audit events: decisions, reasons vouched for by the trail, the
CLI, and `clinrlhf audit verify` over a trail that holds them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from clinrlhf.cli import main
from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, open_store, transaction, verify_audit
from clinrlhf.store.models import AuditEvent
from clinrlhf.store.quarantine import (
    QuarantineError,
    decisions,
    quarantine,
    quarantined,
    read_reasons,
    release,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLINRLHF_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    return tmp_path


def test_state_is_the_replay_of_decisions(tmp_path):
    sessions = open_store(f"sqlite:///{tmp_path / 's.db'}")
    notes = tmp_path / "reasons.ndjson"
    with transaction(sessions) as session:
        quarantine(session, "c1", reason="accuracy 0.12", actor="clinrlhf-pipeline", reasons=notes)
        quarantine(session, "c2", reason="manual", actor="cli", reasons=notes)
    with transaction(sessions) as session:
        with pytest.raises(QuarantineError):
            quarantine(session, "c1", reason="again", actor="cli")
        release(session, "c1", reason="reviewed: rater misread the form", actor="cli", reasons=notes)
        with pytest.raises(QuarantineError):
            release(session, "c1", reason="twice", actor="cli")
    with consistent_read(sessions) as session:
        assert sorted(quarantined(session)) == ["c2"]
        history = decisions(session)
        assert [(d.clinician, d.action) for d in history] == [
            ("c1", "quarantine"),
            ("c2", "quarantine"),
            ("c1", "release"),
        ]
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.entity_type for e in events] == ["Quarantine", "Quarantine", "QuarantineRelease"]
        assert verify_audit(session).ok
    reasons = read_reasons(notes, history)
    assert reasons[history[2].event_id].text == "reviewed: rater misread the form"
    assert all(r.verified for r in reasons.values())
    # An edited reason no longer matches the digest its event recorded.
    notes.write_text(notes.read_text().replace("manual", "edited later"))
    assert not read_reasons(notes, history)[history[1].event_id].verified


def test_cli_add_list_release(home, capsys, monkeypatch):
    settings = Settings()
    monkeypatch.setenv("CLINRLHF_TOKEN", mint_token(settings, role="compliance", sub="o-1", name="Dr. Lee"))
    assert main(["quarantine", "add", "abc123", "--reason", "robust z -6"]) == 0
    capsys.readouterr()
    assert main(["quarantine", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["clinician"], r["reason"], r["reason_verified"]) for r in listed] == [
        ("abc123", "robust z -6", True)
    ]
    assert main(["quarantine", "release", "nobody", "--reason", "x"]) == 2
    assert "not quarantined" in capsys.readouterr().err
    lead = mint_token(settings, role="compliance", sub="o-2", name="Dr. Lead")
    assert main(["quarantine", "release", "abc123", "--reason", "reviewed", "--token", lead]) == 0
    capsys.readouterr()
    assert main(["quarantine", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["quarantine", "list", "--history"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(r["action"], r["by"]) for r in history] == [
        ("quarantine", "Dr. Lee (compliance)"),
        ("release", "Dr. Lead (compliance)"),
    ]
    assert main(["audit", "verify", "--no-witness"]) == 0
