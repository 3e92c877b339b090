"""Static checks of deploy/: no Docker engine or cluster runs here, so parse and lint what we can.

`docker-compose config` and `helm template` run only where their binaries are installed; otherwise
those tests are skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
CHART = DEPLOY / "helm" / "clinrlhf"
DOCKERFILES = {
    "serve": DEPLOY / "docker" / "Dockerfile.serve",
    "train": DEPLOY / "docker" / "Dockerfile.train",
    "mlflow": DEPLOY / "docker" / "Dockerfile.mlflow",
}

SECRET_NAME = re.compile(
    r"PASSWORD|SECRET|DEID_KEY|AUDIT_KEY|ACCESS_KEY|DATABASE_URL|BACKEND_STORE_URI|TOKEN(?!_AUDIENCE)", re.I
)
# A value that is entirely a compose reference, or a URL whose password part is one.
REFERENCE = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")
URL_WITH_REFERENCED_PASSWORD = re.compile(r"^[a-z0-9+]+://[a-z0-9_]+:\$\{[A-Z0-9_]+(:\?[^}]*)?\}@")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _plain_yaml_files() -> list[Path]:
    """Every YAML file that is YAML as written (Helm templates are Go templates, checked separately)."""
    templates = CHART / "templates"
    return sorted(
        p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"} and templates not in p.parents
    )


def test_every_plain_yaml_file_parses() -> None:
    files = _plain_yaml_files()
    assert COMPOSE in files and CHART / "values.yaml" in files and CHART / "Chart.yaml" in files
    for path in files:
        assert yaml.safe_load(path.read_text()) is not None, path


def test_compose_has_the_whole_stack_with_healthchecks() -> None:
    services = _compose()["services"]
    assert {"api", "postgres", "mlflow", "minio"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    for name in ("api", "postgres", "mlflow", "minio"):
        assert "test" in services[name]["healthcheck"], name
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_compose_api_runs_in_production_on_postgres() -> None:
    env = _compose()["services"]["api"]["environment"]
    assert env["CLINRLHF_ENV"] == "production"
    assert env["CLINRLHF_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["CLINRLHF_DATABASE_URL"]
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_compose_mlflow_uses_postgres_minio_and_basic_auth() -> None:
    mlflow = _compose()["services"]["mlflow"]
    command = [str(part) for part in mlflow["command"]]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    assert any(part.startswith("s3://") for part in command)
    env = mlflow["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_compose_holds_no_literal_secret() -> None:
    for name, service in _compose()["services"].items():
        env = service.get("environment", {})
        assert isinstance(env, dict), f"{name}: use a mapping for environment"
        for key, value in env.items():
            if not SECRET_NAME.search(key):
                continue
            value = str(value)
            assert REFERENCE.match(value) or URL_WITH_REFERENCED_PASSWORD.match(value), (
                f"{name}.{key} must be a ${{VAR}} reference, not a literal"
            )
            # a secret reference may never carry a default (`${X:-literal}`)
            assert ":-" not in value, f"{name}.{key} has a literal default"


def test_env_example_has_only_placeholders() -> None:
    text = ENV_EXAMPLE.read_text()
    assert "must be replaced" in text.lower() or "replace every value" in text.lower()
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    code = "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))
    # every variable compose requires (`${X:?...}` or a bare `${X}`) has a line in the example
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)(?::\?|\})", code))
    assert referenced <= set(values), f"missing from .env.example: {referenced - set(values)}"
    for key, value in values.items():
        if SECRET_NAME.search(key) and not key.endswith("USERNAME"):
            assert value.startswith("CHANGE_ME"), f"{key} must be a CHANGE_ME placeholder"


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_is_non_root_with_healthcheck(kind: str) -> None:
    text = DOCKERFILES[kind].read_text()
    assert text.splitlines()[0].startswith("# syntax=") or "FROM python:3.11-slim" in text
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK\s+", text, re.M)
    assert not re.search(r"^HEALTHCHECK\s+NONE", text, re.M)
    # nothing secret is baked in: no ENV/ARG of a password, key or database URL with a value
    for line in re.findall(r"^(?:ENV|ARG)\s+.*$", text, re.M):
        assert not re.search(r"(PASSWORD|SECRET|DEID_KEY|AUDIT_KEY|DATABASE_URL|ACCESS_KEY)\S*=", line), line
    assert ".env" not in re.findall(r"^COPY\s+(.*)$", text, re.M)


@pytest.mark.parametrize("kind", ["serve", "train"])
def test_dockerfile_pins_cpu_torch_and_installs_the_project(kind: str) -> None:
    text = DOCKERFILES[kind].read_text()
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", text, re.M)
    assert '"torch==${TORCH_VERSION}"' in text
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert re.search(r'^RUN pip install "\.(\[postgres\])?"', text, re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject, "Dockerfiles pin the torch of pyproject.toml"


def test_serve_healthcheck_hits_the_health_route() -> None:
    text = DOCKERFILES["serve"].read_text()
    assert "http://127.0.0.1:8000/healthz" in text
    routes = (ROOT / "services" / "api" / "routes" / "health.py").read_text()
    assert '"/healthz"' in routes


def test_dockerignore_keeps_local_state_out() -> None:
    for kind, dockerfile in DOCKERFILES.items():
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore").read_text()
        for pattern in ("**/.venv", "**/.clinrlhf", "**/.env", "**/keys"):
            assert pattern in ignore, (kind, pattern)


def _walk(node: object, path: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    else:
        yield path, node


def test_helm_values_hold_no_secret() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["existingSecret"]
    secret_like = re.compile(r"password|secret|token|deid|key|databaseurl", re.I)
    for path, value in _walk(values):
        leaf = path.rsplit(".", 1)[-1]
        if path.startswith(".secretKeys.") or leaf in {"existingSecret", "tokenAudience"}:
            continue  # names of keys inside the Secret, the Secret's name, the `aud` claim
        if secret_like.search(leaf):
            assert value in (None, "", {}, []), f"values{path} looks like a secret value"
    assert not re.search(r"postgres(ql)?(\+\w+)?://[^/\s]*:[^@\s]*@", (CHART / "values.yaml").read_text())


def test_helm_chart_metadata_and_templates() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "clinrlhf" and chart["version"]
    templates = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}
    assert {"_helpers.tpl", "deployment.yaml", "service.yaml", "configmap.yaml", "hpa.yaml"} <= set(templates)
    deployment = templates["deployment.yaml"]
    for key in ("secretKeyRef", "livenessProbe", "readinessProbe", "resources", "configMapRef"):
        assert key in deployment, key
    for env in (
        "CLINRLHF_DATABASE_URL",
        "CLINRLHF_DEID_KEY",
        "CLINRLHF_AUDIT_KEY",
        "MLFLOW_TRACKING_PASSWORD",
    ):
        block = deployment.split(f"name: {env}", 1)[1].split("- name:", 1)[0]
        assert "secretKeyRef" in block, env
    # the chart never creates a Secret and the ConfigMap never carries a secret variable
    assert not any(re.search(r"^kind:\s*Secret\b", text, re.M) for text in templates.values())
    config_keys = re.findall(r"^  ([A-Z0-9_]+):", templates["configmap.yaml"], re.M)
    assert "CLINRLHF_ENV" in config_keys
    assert not [key for key in config_keys if SECRET_NAME.search(key)]
    assert "{{- if .Values.autoscaling.enabled }}" in templates["hpa.yaml"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["resources"]["requests"] and values["resources"]["limits"]
    assert values["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert values["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_docker_compose_config_validates() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (Debian package `docker-compose`); static checks only")
    result = subprocess.run(
        [binary, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (Debian package `docker-compose`)")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(
        [binary, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "set " in result.stderr and "in the env file" in result.stderr


@pytest.mark.parametrize("autoscaling", [False, True])
def test_helm_template_renders_and_validates(autoscaling: bool) -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm not installed; chart checked statically only")
    args = [
        helm,
        "template",
        "clinrlhf",
        str(CHART),
        "--set",
        "config.publicBaseUrl=https://clinrlhf.example.org",
    ]
    if autoscaling:
        args += ["--set", "autoscaling.enabled=true"]
    rendered = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "Job"} <= kinds
    assert ("HorizontalPodAutoscaler" in kinds) == autoscaling
    assert "Secret" not in kinds
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    applied = subprocess.run(
        [kubectl, "apply", "--dry-run=client", "--validate=false", "-f", "-"],
        input=rendered.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
