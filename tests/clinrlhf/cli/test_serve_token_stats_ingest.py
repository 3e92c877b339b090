"""`clinrlhf serve`, `token`, `stats` and `ingest`, each run through its own argparse registration."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import torch

from clinrlhf.cli import CLIError, ingest, serve, stats, token
from clinrlhf.identity import MemoryJtiCache, mint_token, verify_token
from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer, pointers, save_policy
from clinrlhf.settings import Settings
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world

SYNTHEA = sorted((Path(__file__).parents[4] / "shared" / "data" / "synthea-r4").glob("*.json"))
REPO = Path(__file__).parents[3]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    for name in ("CLINRLHF_DATABASE_URL", "CLINRLHF_POLICY", "CLINRLHF_ENV", "CLINRLHF_DEID_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def run(module: ModuleType, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="clinrlhf")
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([module.__name__.rsplit(".", 1)[-1], *argv])
    return int(args.func(args) or 0)


def printed_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def phi_of(bundle: dict) -> set[str]:
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    found = {
        patient["id"],
        *(t["value"] for t in patient.get("telecom", [])),
        *(i["value"] for i in patient.get("identifier", [])),
        *(line for a in patient.get("address", []) for line in a.get("line", [])),
    }
    for name in patient.get("name", []):
        found |= {*name.get("given", []), name.get("family", "")}
    return {s for s in found if len(s) >= 4}


def test_token_prints_a_token_that_verifies_under_the_same_home(home: Path, capsys) -> None:
    assert run(token, "--role", "compliance", "--sub", "auditor-1", "--ttl", "120") == 0
    printed = capsys.readouterr().out.strip()
    principal = verify_token(Settings(home=home), printed, MemoryJtiCache())
    assert (principal.role, principal.sub) == ("compliance", "auditor-1")
    with pytest.raises(CLIError, match="ttl"):
        run(token, "--role", "clinician", "--sub", "x", "--ttl", "0")
    with pytest.raises(SystemExit):
        run(token, "--role", "admin", "--sub", "x")


def test_stats_on_an_empty_home_prints_zero_counts(home: Path, capsys) -> None:
    assert run(stats) == 0
    result = printed_json(capsys)
    assert {k: result[k] for k in ("cases", "cards", "feedback", "reviews")} == dict.fromkeys(
        ("cases", "cards", "feedback", "reviews"), 0
    )


def test_ingest_of_the_synthea_bundles_stores_eleven_cases_and_no_identifier(home: Path, capsys) -> None:
    assert len(SYNTHEA) == 13
    assert run(ingest, *map(str, SYNTHEA)) == 0
    summary = printed_json(capsys)
    assert summary["cases"] == 11 and summary["skipped"] == {"no-patient": 2}
    # DocumentReference notes are kept, scrubbed; encounters and claims are dropped whole.
    assert summary["dropped"]["Encounter"] > 0 and summary["dropped"]["Claim"] > 0
    on_disk = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    for path in SYNTHEA:
        bundle = json.loads(path.read_bytes())
        if any(e["resource"]["resourceType"] == "Patient" for e in bundle["entry"]):
            leaked = [s for s in phi_of(bundle) if s.encode() in on_disk]
            assert not leaked, f"{len(leaked)} identifiers of a patient found under CLINRLHF_HOME"
    run(ingest, *map(str, SYNTHEA[:3]))
    assert printed_json(capsys)["duplicates"] == 3
    run(stats)
    assert printed_json(capsys)["cases_ingest"] == 11


def test_ingest_of_bulk_ndjson_groups_resources_across_files(home: Path, tmp_path: Path, capsys) -> None:
    world = load_world()
    by_type: dict[str, list[str]] = {}
    for patient in generate_patients(world, 3, seed=12):
        pid = patient.bundle["entry"][0]["resource"]["id"]
        for entry in patient.bundle["entry"]:
            resource = dict(entry["resource"])
            for link in ("subject", "patient"):
                if link in resource:
                    resource[link] = {"reference": f"Patient/{pid}"}
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    paths = []
    for kind, lines in by_type.items():
        paths.append(tmp_path / f"{kind}.ndjson")
        paths[-1].write_text("\n".join(lines) + "\n")
    assert run(ingest, *map(str, paths)) == 0
    assert printed_json(capsys)["cases"] == 3


@pytest.mark.parametrize(
    ("content", "suffix", "reason"),
    [
        (None, ".json", "PATH argument 2: no such file"),
        (
            b'{"resourceType": "Bundle", "entry": [{"name": "Okafor"',
            ".json",
            "PATH argument 2: not valid JSON",
        ),
        (
            b'{"resourceType": "Patient", "name": [{"family": "Okafor"}]}',
            ".json",
            "PATH argument 2: not a FHIR Bundle",
        ),
        (
            b'{"resourceType": "Patient"}\n{"name": "Okafor"\n',
            ".ndjson",
            "PATH argument 2 line 2: not valid JSON",
        ),
        (b"Okafor", ".csv", "PATH argument 2: expected"),
    ],
)
def test_ingest_errors_are_one_line_without_content_and_store_nothing(
    home: Path, tmp_path: Path, capsys, content, suffix, reason
) -> None:
    bad = tmp_path / f"Maria_Okafor{suffix}"
    if content is not None:
        bad.write_bytes(content)
    with pytest.raises(CLIError) as caught:
        run(ingest, str(SYNTHEA[0]), str(bad))
    message = str(caught.value)
    assert message.startswith(reason) and "Okafor" not in message and "\n" not in message
    run(stats)
    assert printed_json(capsys)["cases"] == 0  # all or nothing: the good first file was rolled back


def test_serve_without_a_policy_explains_what_to_do(home: Path) -> None:
    with pytest.raises(CLIError, match="no aligned policy under \\$CLINRLHF_HOME"):
        run(serve)
    with pytest.raises(CLIError, match="not a policy directory"):
        run(serve, "--policy", str(home / "missing"))


def _serve_command(port: int, policy: Path) -> list[str]:
    # Only `serve` is registered, so the test does not depend on the other subcommands.
    script = (
        "import argparse, sys; from clinrlhf.cli import serve; p = argparse.ArgumentParser(); "
        "serve.register(p.add_subparsers(dest='command')); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
    )
    return [
        sys.executable,
        "-c",
        script,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--policy",
        str(policy),
        "--log-level",
        "warning",
    ]


def test_serve_runs_uvicorn_and_accepts_tokens_from_the_same_home(home: Path, tmp_path: Path) -> None:
    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(0)
    policy = save_policy(build_policy(PolicyConfig(), tokenizer), tokenizer, tmp_path / "policy")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        _serve_command(port, policy),
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not become healthy"
                time.sleep(0.2)
        minted = mint_token(Settings(home=home), role="cds-client", sub="ehr")
        response = httpx.get(f"{base}/cds-services", headers={"Authorization": f"Bearer {minted}"})
        assert response.status_code == 200 and response.json()["services"][0]["id"] == "clinrlhf-treatment"
        card = httpx.get(f"{base}/model-card", headers={"Authorization": f"Bearer {minted}"}).json()
        assert card["model_version"].startswith("policy@")
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.slow
def test_serve_resolves_an_mlflow_run_uri_to_a_local_policy(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "config.json").write_text("{}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("serve-test", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(policy), "policy")
    resolved = pointers.resolve_policy(Settings(home=home), f"runs:/{run.info.run_id}/policy")
    assert (resolved / "config.json").read_text() == "{}" and home in resolved.parents
    with pytest.raises(pointers.PolicyNotFoundError, match="cannot download"):
        pointers.resolve_policy(Settings(home=home), "runs:/0123456789abcdef/policy")
