"""What `clinrlhf serve` serves by default, and what it says on start-up: the version the MLflow
alias `production` names first (approved), else the latest aligned policy with a loud NOT APPROVED
line; in both cases the policy's model version (as cards name it) and the URLs of /review and
/compliance.

uvicorn.run is replaced by a recorder here: these tests are about the choice made and printed before
serving starts (tests/clinrlhf/cli/test_serve_token_stats_ingest.py runs the real server)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from clinrlhf.cli import serve
from clinrlhf.policy.pointers import ProductionPolicy, set_latest_aligned, set_production


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_POLICY", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY"):
        # set, then deleted: monkeypatch restores what was there before, so the CLINRLHF_POLICY that
        # serve sets for its workers does not leak into later tests
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return tmp_path / "home"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda app, **kw: calls.append(kw | {"policy": os.environ["CLINRLHF_POLICY"]})
    )
    return calls


def policy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    return folder


def start(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser(prog="clinrlhf")
    serve.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--port", "8123", *argv])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_serve_serves_the_production_version_and_says_it_is_approved(
    home: Path, tmp_path: Path, served: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    approved, newer = policy(tmp_path, "policy-approved"), policy(tmp_path, "policy-newer")
    set_production(home, ProductionPolicy("clinrlhf-policy", "3", "models:/clinrlhf-policy/3", str(approved)))
    set_latest_aligned(home, newer)  # newer, but not approved: not served by default
    said = start(capsys)
    assert served[0]["policy"] == str(approved)
    assert "serving policy policy-approved: the production version clinrlhf-policy v3 (approved)" in said
    assert "NOT APPROVED" not in said


def test_without_a_production_version_serve_says_loudly_that_the_policy_is_not_approved(
    home: Path, tmp_path: Path, served: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    latest = policy(tmp_path, "policy-latest")
    set_latest_aligned(home, latest)
    said = start(capsys)
    assert served[0]["policy"] == str(latest)
    assert "serving policy policy-latest: NOT APPROVED for production" in said
    assert "clinrlhf promote" in said  # says how to put an approved version in production


def test_an_explicit_policy_that_is_not_in_production_is_not_approved_either(
    home: Path, tmp_path: Path, served: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    approved, other = policy(tmp_path, "policy-approved"), policy(tmp_path, "policy-other")
    set_production(home, ProductionPolicy("clinrlhf-policy", "3", "models:/clinrlhf-policy/3", str(approved)))
    said = start(capsys, "--policy", str(other))
    assert "serving policy policy-other: NOT APPROVED for production" in said
    assert "clinrlhf-policy v3 is" in said  # and names the version that is


def test_serve_prints_where_clinicians_and_compliance_officers_go(
    home: Path, tmp_path: Path, served: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    set_latest_aligned(home, policy(tmp_path, "policy-latest"))
    said = start(capsys)
    assert "review page: http://127.0.0.1:8123/review" in said
    assert "compliance: http://127.0.0.1:8123/compliance" in said
    said = start(capsys, "--host", "0.0.0.0")  # every interface: this machine reaches it on localhost
    assert "review page: http://localhost:8123/review" in said
