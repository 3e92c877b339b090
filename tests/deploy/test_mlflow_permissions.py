"""MLflow's permissions for clinrlhf (deploy/mlflow/bootstrap_permissions.py): only the pipeline writes
training runs, ML engineers never read the compliance experiment (change records, CHAI cards), and
the names the bootstrap uses are clinrlhf's own. The slow test runs a real `mlflow server --app-name
basic-auth` on localhost (about a minute to start on a shared machine) and tries each identity."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from clinrlhf.compliance.promotion_records import COMPLIANCE_EXPERIMENT
from clinrlhf.compliance.registry import MODEL_NAME
from clinrlhf.lineage.runs import EXPERIMENT, EXPERIMENT_KIND, MODEL_TRAINING

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "mlflow" / "bootstrap_permissions.py"
WRITES = {"EDIT", "MANAGE"}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap_permissions", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bp = _load()


def _grants(role: str) -> set[tuple[str, str, str]]:
    return {(g.resource_type, g.resource, g.permission) for g in bp.GRANTS[role]}


def test_the_bootstrap_names_clinrlhfs_own_experiments_model_and_experiment_kind() -> None:
    assert (bp.TRAINING_EXPERIMENT, bp.COMPLIANCE_EXPERIMENT, bp.MODEL) == (
        EXPERIMENT,
        COMPLIANCE_EXPERIMENT,
        MODEL_NAME,
    )
    assert bp.EXPERIMENT_KIND == (EXPERIMENT_KIND, MODEL_TRAINING)


def test_only_the_pipeline_may_write_the_training_experiment() -> None:
    writers = {
        role
        for role in bp.GRANTS
        for kind, resource, permission in _grants(role)
        if kind == "experiment" and resource in (EXPERIMENT, "*") and permission in WRITES
    }
    assert writers == {bp.PIPELINE}


def test_ml_engineers_are_denied_the_compliance_experiment_and_write_nothing() -> None:
    grants = _grants(bp.ENGINEER)
    assert ("experiment", COMPLIANCE_EXPERIMENT, "DENY") in grants
    assert not [g for g in grants if g[2] in WRITES]
    # the run and version tiers cap them at READ whatever experiment grant is added later
    assert {("run", "*", "READ"), ("registered_model_version", "*", "READ")} <= grants


def test_only_the_api_writes_the_compliance_experiment_and_people_write_nothing() -> None:
    writers = {r for r in bp.GRANTS if ("experiment", COMPLIANCE_EXPERIMENT, "EDIT") in _grants(r)}
    assert writers == {bp.API}
    assert ("experiment", COMPLIANCE_EXPERIMENT, "DENY") in _grants(bp.PIPELINE)  # cannot forge records
    assert not [g for g in _grants(bp.OFFICER) if g[2] in WRITES | {"DENY"}]


def test_sub_resource_tiers_are_wildcard_grants_and_experiments_resolve_to_ids() -> None:
    for grants in bp.GRANTS.values():
        for g in grants:
            assert g.permission in {"READ", "USE", "EDIT", "MANAGE", "DENY"}
            if g.resource_type not in {"experiment", "registered_model"}:
                assert g.resource == "*", g  # MLflow refuses a per-id grant on a sub-resource tier
    resolved = bp.resolve(bp.GRANTS[bp.ENGINEER], {EXPERIMENT: "1", COMPLIANCE_EXPERIMENT: "2"})
    assert ("experiment", "2", "DENY") in resolved and ("experiment", "1", "READ") in resolved


# --- a real tracking server --------------------------------------------------------------------

ADMIN = ("admin", "admin-password-for-the-test-0001")
USERS = {
    "pipeline": ("svc-pipeline", "pipeline-password-0001"),
    "api": ("svc-api", "api-password-000000001"),
    "engineer": ("eve", "engineer-password-0001"),
    "officer": ("olga", "officer-password-00001"),
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("flask_wtf", reason="the basic-auth app needs mlflow[auth] (Flask-WTF)")
    folder = tmp_path_factory.mktemp("mlflow-auth")
    config = folder / "basic_auth.ini"
    config.write_text(
        (ROOT / "deploy" / "compose" / "mlflow" / "basic_auth.ini")
        .read_text()
        .replace("sqlite:////mlflow/auth/basic_auth.db", f"sqlite:///{folder / 'auth.db'}")
    )
    port = _port()
    env = os.environ | {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret-key",
        "OMP_NUM_THREADS": "1",
    }
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    command = [mlflow, "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--workers", "1"]
    command += ["--artifacts-destination", str(folder / "artifacts")]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _as(who: str) -> httpx.Client:
    return httpx.Client(auth=USERS[who] if who != "admin" else ADMIN, timeout=60)


def _post(url: str, who: str, path: str, body: dict) -> httpx.Response:
    with _as(who) as c:
        return c.post(f"{url}/api/2.0/mlflow/{path}", json=body)


def _get(url: str, who: str, path: str, **params: str) -> httpx.Response:
    with _as(who) as c:
        return c.get(f"{url}/api/2.0/mlflow/{path}", params=params)


def _artifact(url: str, who: str, experiment_id: str, run_id: str, name: str) -> httpx.Response:
    with _as(who) as c:
        return c.get(f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{name}")


def _put_artifact(url: str, who: str, experiment_id: str, run_id: str, name: str) -> httpx.Response:
    with _as(who) as c:
        path = f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{name}"
        return c.put(path, content=b'{"record": true}')


@pytest.mark.slow
def test_a_real_tracking_server_enforces_the_grants(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    environ = {
        "MLFLOW_PIPELINE_USERNAME": USERS["pipeline"][0],
        "MLFLOW_PIPELINE_PASSWORD": USERS["pipeline"][1],
        "MLFLOW_API_USERNAME": USERS["api"][0],
        "MLFLOW_API_PASSWORD": USERS["api"][1],
    }
    bp.apply(server, environ)
    assert bp.apply(server, environ)  # idempotent: a second run changes nothing and does not fail
    from mlflow.server import get_app_client

    auth = get_app_client("basic-auth", tracking_uri=server)
    for who, role in (("engineer", bp.ENGINEER), ("officer", bp.OFFICER)):
        auth.create_user(*USERS[who])
        bp.assign(auth, USERS[who][0], role)
    experiments = {
        name: _get(server, "admin", "experiments/get-by-name", experiment_name=name).json()["experiment"][
            "experiment_id"
        ]
        for name in (EXPERIMENT, COMPLIANCE_EXPERIMENT)
    }
    training, compliance = experiments[EXPERIMENT], experiments[COMPLIANCE_EXPERIMENT]

    # The pipeline writes training runs; the API may not, and the pipeline may not write records.
    created = _post(server, "pipeline", "runs/create", {"experiment_id": training})
    assert created.status_code == 200, created.text
    run = created.json()["run"]["info"]["run_id"]
    assert _put_artifact(server, "pipeline", training, run, "metrics.json").status_code == 200
    assert _post(server, "api", "runs/create", {"experiment_id": training}).status_code == 403
    assert _post(server, "pipeline", "runs/create", {"experiment_id": compliance}).status_code == 403

    # The API writes a change record's run in the compliance experiment.
    created = _post(server, "api", "runs/create", {"experiment_id": compliance})
    assert created.status_code == 200, created.text
    record_run = created.json()["run"]["info"]["run_id"]
    assert _put_artifact(server, "api", compliance, record_run, "change-record.json").status_code == 200

    # ML engineers read training runs and their artifacts, never the compliance experiment, and
    # write nothing.
    assert _get(server, "engineer", "runs/get", run_id=run).status_code == 200
    assert _artifact(server, "engineer", training, run, "metrics.json").status_code == 200
    assert _get(server, "engineer", "runs/get", run_id=record_run).status_code == 403
    assert _artifact(server, "engineer", compliance, record_run, "change-record.json").status_code == 403
    assert _post(server, "engineer", "runs/create", {"experiment_id": training}).status_code == 403
    tag = {"run_id": run, "key": "note", "value": "edited by hand"}
    assert _post(server, "engineer", "runs/set-tag", tag).status_code == 403

    # Compliance officers read the records, and write nothing either.
    assert _artifact(server, "officer", compliance, record_run, "change-record.json").status_code == 200
    assert _post(server, "officer", "runs/set-tag", tag).status_code == 403
    assert _post(server, "pipeline", "runs/set-tag", tag).status_code == 200
