"""deploy/ gives the API every production setting it needs (the audit key from a secret; the public
URL, the FHIR servers and the CDS clients' practitioners as configuration), and wires MLflow's
permissions: a one-shot bootstrap as the admin, and the API on its own MLflow identity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from clinrlhf.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
CHART = ROOT / "deploy" / "helm" / "clinrlhf"
TEMPLATES = CHART / "templates"
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?[^}]*\}$")

SECRET = {"CLINRLHF_AUDIT_KEY": "auditKey"}
CONFIG = {
    "CLINRLHF_PUBLIC_BASE_URL": "publicBaseUrl",
    "CLINRLHF_FHIR_SERVERS": "fhirServers",
    "CLINRLHF_CDS_CLIENT_PRACTITIONERS": "cdsClientPractitioners",
}


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _env_block(deployment: str, variable: str) -> str:
    return deployment.split(f"- name: {variable}\n", 1)[1].split("- name:", 1)[0]


def test_the_settings_deploy_sets_are_settings_clinrlhf_reads() -> None:
    fields = {f"CLINRLHF_{name.upper()}" for name in Settings.model_fields}
    assert set(SECRET) | set(CONFIG) <= fields


@pytest.mark.parametrize("variable", sorted(SECRET | CONFIG))
def test_compose_requires_each_setting_from_the_env_file(variable: str) -> None:
    value = str(_services()["api"]["environment"][variable])
    found = REQUIRED.match(value)
    assert found and found["var"] == variable, f"api.{variable} must be ${{{variable}:?...}}, not {value}"
    example = (ROOT / "deploy" / "compose" / ".env.example").read_text()
    assert re.search(rf"^{variable}=", example, re.M)


def test_helm_reads_the_audit_key_from_the_secret() -> None:
    deployment = (TEMPLATES / "deployment.yaml").read_text()
    block = _env_block(deployment, "CLINRLHF_AUDIT_KEY")
    assert "secretKeyRef" in block and ".Values.secretKeys.auditKey" in block
    assert yaml.safe_load((CHART / "values.yaml").read_text())["secretKeys"]["auditKey"] == "audit-key"


@pytest.mark.parametrize("variable", sorted(CONFIG))
def test_helm_sets_each_configuration_setting(variable: str) -> None:
    configmap = (TEMPLATES / "configmap.yaml").read_text()
    assert re.search(rf"^  {variable}: .*\.Values\.config\.{CONFIG[variable]}\b", configmap, re.M)
    assert CONFIG[variable] in yaml.safe_load((CHART / "values.yaml").read_text())["config"]


def test_helm_refuses_to_render_without_a_public_url() -> None:
    line = next(x for x in (TEMPLATES / "configmap.yaml").read_text().splitlines() if "PUBLIC_BASE_URL" in x)
    assert "required" in line


def test_compose_bootstraps_mlflow_permissions_before_the_api_starts() -> None:
    services = _services()
    init = services["mlflow-init"]
    assert init["entrypoint"] == ["python", "/opt/clinrlhf/bootstrap_permissions.py"]
    assert init["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert init["environment"]["MLFLOW_TRACKING_USERNAME"].startswith("${MLFLOW_ADMIN_USERNAME:?")
    for variable in ("MLFLOW_PIPELINE_PASSWORD", "MLFLOW_API_PASSWORD", "MLFLOW_TRACKING_PASSWORD"):
        assert REQUIRED.match(init["environment"][variable]), variable
    api = services["api"]
    assert api["depends_on"]["mlflow-init"]["condition"] == "service_completed_successfully"
    # the API runs as its own MLflow identity (role clinrlhf-api), never as the admin
    assert api["environment"]["MLFLOW_TRACKING_USERNAME"].startswith("${MLFLOW_API_USERNAME:?")
    assert api["environment"]["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_API_PASSWORD:?")
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile.mlflow").read_text()
    assert "COPY deploy/mlflow/bootstrap_permissions.py /opt/clinrlhf/bootstrap_permissions.py" in dockerfile


def test_helm_runs_the_permissions_job_with_credentials_from_the_secret() -> None:
    job = (TEMPLATES / "mlflow-permissions-job.yaml").read_text()
    assert "helm.sh/hook: post-install,post-upgrade" in job and "kind: Job" in job
    assert '["python", "/opt/clinrlhf/bootstrap_permissions.py"]' in job
    assert "secretKeyRef" in job and "value: {{ .Values.config.mlflowTrackingUri" in job
    for key in ("mlflowAdminPassword", "mlflowPipelinePassword", "mlflowTrackingPassword"):
        assert f".Values.secretKeys.{key}" in job, key
    keys = yaml.safe_load((CHART / "values.yaml").read_text())["secretKeys"]
    assert {
        "mlflowAdminUsername",
        "mlflowAdminPassword",
        "mlflowPipelineUsername",
        "mlflowPipelinePassword",
    } <= set(keys)
