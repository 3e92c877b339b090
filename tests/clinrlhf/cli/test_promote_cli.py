"""`clinrlhf approve`, `promote` and `rollback`: the production alias moves only with a compliance
approval and passing criteria, and every refusal is one line with a non-zero exit."""

import io
import json
import shutil

import pytest
import torch
from mlflow.tracking import MlflowClient

from clinrlhf.cli import main
from clinrlhf.compliance.registry import MODEL_NAME, production_version
from clinrlhf.identity import mint_token
from clinrlhf.pipeline.sample_run import record_sample_run
from clinrlhf.policy.pointers import production_policy
from clinrlhf.settings import Settings

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    home = tmp_path_factory.mktemp("promote-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings(home=home)
        good = record_sample_run(settings)
        poor = record_sample_run(settings, concordance=0.5, unsafe_rate=0.1, seed=1)
    return home, good.version, poor.version, good.pipeline_run_id


@pytest.fixture
def home(template, tmp_path, monkeypatch):
    source, good, poor, _ = template
    home = tmp_path / "home"
    shutil.copytree(source, home)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CLINRLHF_HOME", str(home))
    return Settings(home=home), good, poor


def _run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _token(settings, role="compliance"):
    return mint_token(settings, role=role, sub=f"{role}-1")


def test_approve_needs_the_compliance_role(home, capsys):
    settings, good, _ = home
    status, _, err = _run(capsys, "approve", good, "--token", _token(settings, "ml-engineer"))
    assert status == 2 and err.count("\n") == 1 and "needs the compliance role" in err


def test_approve_rejects_a_bad_token(home, capsys):
    _, good, _ = home
    status, _, err = _run(capsys, "approve", good, "--token", "not-a-jwt")
    assert status == 2 and err == "clinrlhf approve: token rejected: token is malformed\n"


def test_promote_without_approval_is_refused(home, capsys):
    settings, good, _ = home
    status, _, err = _run(capsys, "promote", good, "--token", _token(settings))
    assert status == 2 and err.count("\n") == 1 and "no approval by the compliance role" in err


def test_promote_with_failing_criteria_is_refused(home, capsys, monkeypatch):
    settings, _, poor = home
    monkeypatch.setattr("sys.stdin", io.StringIO(_token(settings) + "\n"))
    assert _run(capsys, "approve", poor, "--token", "-", "--override-reason", "pilot")[0] == 0  # stdin
    status, _, err = _run(capsys, "promote", poor, "--token", _token(settings))
    assert status == 2 and err.count("\n") == 1 and "acceptance criteria not met: concordance" in err


def test_promote_then_rollback(home, capsys, tmp_path):
    settings, good, poor = home
    token = _token(settings)
    criteria = tmp_path / "criteria.json"
    criteria.write_text(json.dumps({"min_concordance": 0.4, "max_unsafe_rate": 0.2, "max_subgroup_gap": 0.5}))
    for version in (good, poor):
        assert _run(capsys, "approve", version, "--token", token, "--criteria", str(criteria))[0] == 0
    assert _run(capsys, "promote", good, "--criteria", str(criteria), "--token", token)[0] == 0
    status, out, _ = _run(capsys, "promote", poor, "--criteria", str(criteria), "--token", token)
    assert status == 0 and f"version {poor} is in production (was version {good})" in out
    assert production_policy(settings.resolved_home).version == poor
    status, out, _ = _run(capsys, "rollback", "--token", token)
    assert status == 0 and f"version {good} is in production again" in out
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert str(production_version(client, MODEL_NAME).version) == good
    status, _, err = _run(capsys, "rollback", "--token", token)
    assert status == 2 and "first production version" in err


def test_lineage_shows_the_registered_version_and_its_approval(home, template, capsys):
    settings, good, _ = home
    named = mint_token(settings, role="compliance", sub="compliance-1", name="Dr. Ada Lee")
    assert _run(capsys, "approve", good, "--token", named, "--override-reason", "demo")[0] == 0
    status, out, _ = _run(capsys, "lineage", template[3])
    assert status == 0
    assert f"registered as {MODEL_NAME} v{good} (approved by Dr. Ada Lee (compliance:" in out
    assert "PPO run" in out


def test_unknown_version_and_bad_criteria_file(home, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CLINRLHF_TOKEN", _token(home[0]))
    status, _, err = _run(capsys, "promote", "99")
    assert status == 2 and "no version '99'" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"min_concordence": 0.5}')
    status, _, err = _run(capsys, "promote", home[1], "--criteria", str(bad))
    assert status == 2 and "unknown criteria min_concordence" in err
    status, _, err = _run(capsys, "promote", home[1], "--criteria", str(tmp_path / "missing.json"))
    assert status == 2 and "criteria file not found" in err
