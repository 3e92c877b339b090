"""Governance binds: approve, promote, rollback and quarantine add/release need a compliance
officer's verified token; each records who (pseudonym in the trail, display name beside it) and
exactly with which criteria; a failing version goes through only with a written override reason,
itself audited."""

import json
import shutil
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from clinrlhf.cli import main
from clinrlhf.compliance.approval import NAME_TAG, OVERRIDE_TAG
from clinrlhf.compliance.governance import RECORDS_FILE, record_sha256
from clinrlhf.compliance.registry import MODEL_NAME, production_version
from clinrlhf.identity import mint_token, verify_token
from clinrlhf.identity.replay import MemoryJtiCache
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store
from clinrlhf.store.models import AuditEvent

LOOSE = {"min_concordance": 0.4, "max_unsafe_rate": 0.2, "max_subgroup_gap": 0.5}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    home = tmp_path_factory.mktemp("governance-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings(home=home)
        good = record_sample_run(settings)
        poor = record_sample_run(settings, concordance=0.5, unsafe_rate=0.1, seed=1)
    return home, good.version, poor.version


@pytest.fixture
def home(template, tmp_path, monkeypatch):
    source, good, poor = template
    home = tmp_path / "home"
    shutil.copytree(source, home)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("CLINRLHF_TOKEN", raising=False)
    monkeypatch.setenv("CLINRLHF_HOME", str(home))
    return Settings(home=home), good, poor


def _run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _token(settings, role="compliance", name=None, sub=None):
    return mint_token(settings, role=role, sub=sub or f"{role}-1", name=name)


def _events(settings):
    with consistent_read(deployment_store(settings)) as session:
        return [
            SimpleNamespace(id=e.id, entity_type=e.entity_type, actor=e.actor, entity_sha256=e.entity_sha256)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]


def _records(settings):
    path = settings.resolved_home / RECORDS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _criteria_file(tmp_path, values=LOOSE):
    path = tmp_path / "loose.json"
    path.write_text(json.dumps(values))
    return str(path)


@pytest.mark.parametrize(
    "command",
    [["promote", "{poor}", "--criteria", "{loose}"], ["rollback"], ["approve", "{good}"]],
    ids=["promote", "rollback", "approve"],
)
def test_governance_commands_without_a_token_are_refused(home, capsys, tmp_path, command):
    settings, good, poor = home
    args = [a.format(good=good, poor=poor, loose=_criteria_file(tmp_path)) for a in command]
    status, _, err = _run(capsys, *args)
    assert status == 2 and err.count("\n") == 1 and "needs a compliance officer's token" in err
    assert production_version(MlflowClient(settings.mlflow_tracking_uri), MODEL_NAME) is None


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_governance_commands_refuse_a_token_of_another_role(home, capsys, command):
    settings, good, _ = home
    args = [command, good] if command == "promote" else [command]
    status, _, err = _run(capsys, *args, "--token", _token(settings, "ml-engineer"))
    assert status == 2 and err.count("\n") == 1 and "needs the compliance role, not ml-engineer" in err


def test_a_token_from_the_environment_is_verified_like_one_given_on_the_command_line(
    home, capsys, monkeypatch
):
    settings, good, _ = home
    monkeypatch.setenv("CLINRLHF_TOKEN", _token(settings, "clinician"))
    status, _, err = _run(capsys, "rollback")
    assert status == 2 and "needs the compliance role, not clinician" in err
    monkeypatch.setenv("CLINRLHF_TOKEN", "forged")
    status, _, err = _run(capsys, "rollback")
    assert status == 2 and "token rejected: token is malformed" in err


def test_approving_a_failing_version_needs_a_written_override_that_is_audited(home, capsys):
    settings, _, poor = home
    token = _token(settings, name="Dr. Ada Lee")
    status, _, err = _run(capsys, "approve", poor, "--token", token)
    assert status == 2 and err.count("\n") == 1
    assert "acceptance criteria not met: concordance 0.5" in err and "--override-reason" in err
    status, _, err = _run(capsys, "approve", poor, "--token", token, "--override-reason", "   ")
    assert status == 2 and "acceptance criteria not met" in err
    assert _events(settings) == []
    reason = "pilot on one ward only, reviewed with the CMO"
    status, out, _ = _run(capsys, "approve", poor, "--token", token, "--override-reason", reason)
    assert status == 0 and "OVERRIDING" in out and "Dr. Ada Lee" in out
    mv = MlflowClient(settings.mlflow_tracking_uri).get_model_version(MODEL_NAME, poor)
    assert mv.tags[OVERRIDE_TAG] == reason
    events = _events(settings)
    assert [e.entity_type for e in events] == ["ModelApproval", "GovernanceOverride"]
    (record,) = _records(settings)
    assert record["override_reason"] == reason and "concordance" in record["failed"]
    assert record.pop("record_event") == events[1].id
    assert record_sha256(record) == events[1].entity_sha256  # the trail pins the reason


def test_promoting_with_custom_criteria_records_who_and_which_criteria(home, capsys, tmp_path):
    settings, _, poor = home
    token = _token(settings, name="Dr. Ada Lee")
    loose = _criteria_file(tmp_path)
    assert _run(capsys, "approve", poor, "--token", token, "--criteria", loose)[0] == 0
    status, out, _ = _run(capsys, "promote", poor, "--token", token, "--criteria", loose)
    assert status == 0 and f"version {poor} is in production" in out
    events = _events(settings)
    promotion = next(e for e in events if e.entity_type == "ModelPromotion")
    assert promotion.actor.startswith("compliance:") and promotion.actor != "cli"
    records = _records(settings)
    assert [r["action"] for r in records] == ["approve", "promote"]
    assert records[1]["custom_criteria"] == LOOSE and records[1]["name"] == "Dr. Ada Lee"
    assert records[1]["criteria"]["max_epsilon"] == 8.0  # the full set checked, defaults included
    tags = MlflowClient(settings.mlflow_tracking_uri).get_model_version(MODEL_NAME, poor).tags
    assert json.loads(tags["clinrlhf.promotion.custom_criteria"]) == LOOSE
    assert tags["clinrlhf.promotion.name"] == "Dr. Ada Lee"
    assert tags["clinrlhf.promotion.actor"] == promotion.actor


def test_promoting_a_failing_version_needs_its_own_override(home, capsys):
    settings, _, poor = home
    token = _token(settings)
    assert _run(capsys, "approve", poor, "--token", token, "--override-reason", "pilot")[0] == 0
    status, _, err = _run(capsys, "promote", poor, "--token", token)
    assert status == 2 and err.count("\n") == 1 and "acceptance criteria not met: concordance" in err
    status, _, _ = _run(capsys, "promote", poor, "--token", token, "--override-reason", "pilot ward 4")
    assert status == 0
    tags = MlflowClient(settings.mlflow_tracking_uri).get_model_version(MODEL_NAME, poor).tags
    assert tags["clinrlhf.promotion.override_reason"] == "pilot ward 4"
    assert [e.entity_type for e in _events(settings)][-2:] == ["ModelPromotion", "GovernanceOverride"]


def test_display_name_comes_from_the_token_and_falls_back_to_the_pseudonym(home, capsys, tmp_path):
    settings, good, poor = home
    loose = _criteria_file(tmp_path)
    status, out, _ = _run(
        capsys, "approve", good, "--criteria", loose, "--token", _token(settings, name="Dr. Ada\nLee")
    )
    assert status == 0
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert client.get_model_version(MODEL_NAME, good).tags[NAME_TAG] == "Dr. Ada Lee"
    anonymous = _token(settings, sub="officer-9")
    assert _run(capsys, "approve", poor, "--criteria", loose, "--token", anonymous)[0] == 0
    tags = client.get_model_version(MODEL_NAME, poor).tags
    assert tags[NAME_TAG] == tags["clinrlhf.approval.actor"].split(":")[1]
    assert all("Ada" not in e.actor for e in _events(settings))  # the trail keeps pseudonyms only


def test_token_command_puts_the_name_claim_in_the_token(home, capsys):
    settings, _, _ = home
    status, out, _ = _run(capsys, "token", "--role", "compliance", "--sub", "o-1", "--name", "Dr. Ada Lee")
    assert status == 0
    principal = verify_token(settings, out.strip(), MemoryJtiCache())
    assert (principal.name, principal.role) == ("Dr. Ada Lee", "compliance")


def test_quarantine_decisions_need_a_compliance_token_not_a_declared_name(home, capsys):
    settings, _, _ = home
    with pytest.raises(SystemExit) as refused:  # no self-declared deciders
        main(["quarantine", "release", "abc123", "--reason", "ok", "--by", "chief-medical-officer"])
    assert refused.value.code == 2 and "unrecognized arguments: --by" in capsys.readouterr().err
    status, _, err = _run(capsys, "quarantine", "add", "abc123", "--reason", "robust z -6")
    assert status == 2 and "needs a compliance officer's token" in err
    status, _, err = _run(
        capsys, "quarantine", "add", "abc123", "--reason", "z -6", "--token", _token(settings, "clinician")
    )
    assert status == 2 and "needs the compliance role" in err
    assert _events(settings) == []
    token = _token(settings, name="Dr. Ada Lee")
    assert _run(capsys, "quarantine", "add", "abc123", "--reason", "robust z -6", "--token", token)[0] == 0
    status, out, _ = _run(capsys, "quarantine", "list")
    (row,) = json.loads(out)
    assert row["by"] == "Dr. Ada Lee (compliance)" and row["reason_verified"]
    assert row["actor"].startswith("compliance:") and row["actor"] == _events(settings)[0].actor
