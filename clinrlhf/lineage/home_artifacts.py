"""MLflow artifact locations relative to CLINRLHF_HOME, so that a home copied elsewhere keeps working.

MLflow's SQLite store writes every location it is given as an absolute URI: `create_experiment`
resolves a relative local path against the working directory (`resolve_uri_if_local`), and each
run's `artifact_uri` is the experiment's location plus `<run id>/artifacts`. A home copied to
another folder then reads (and writes) its artifacts in the old one. So the experiment's location is
`clinrlhf-home:/mlartifacts`, a scheme MLflow passes through untouched, and this repository resolves
it at open time against the folder of the SQLite store in use, which is the home itself.

The scheme is registered in every process that imports this module, and for other programs
(`mlflow ui`, `mlflow artifacts download`) through the `mlflow.artifact_repository` entry point in
pyproject.toml.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SCHEME = "clinrlhf-home"
ARTIFACTS = "mlartifacts"
STORE_FILE = "mlflow.db"
# What `mlflow server`/`mlflow ui` exports to its workers as the backend store (mlflow.server.constants):
# in a server process the global tracking URI is MLflow's default, not the store the server serves.
SERVER_STORE_ENV = "_MLFLOW_SERVER_FILE_STORE"


def home_uri(relative: str) -> str:
    """A location under the home, as MLflow stores it."""
    return f"{SCHEME}:/{relative.lstrip('/')}"


def sqlite_folder(uri: str | None) -> Path | None:
    """The folder of a SQLite tracking store's file, or None for any other URI."""
    if not uri or not uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(uri).database
    except ArgumentError:
        return None
    return Path(database).resolve().parent if database and database != ":memory:" else None


def is_home_store(tracking_uri: str, home: Path) -> bool:
    """Whether the tracking store is the home's own SQLite file, so that its artifacts may be relative."""
    return sqlite_folder(tracking_uri) == home.resolve()


def home_of(tracking_uri: str | None) -> Path:
    """The home a `clinrlhf-home:` location belongs to: the folder of the SQLite store in use."""
    for uri in (tracking_uri, os.environ.get(SERVER_STORE_ENV), mlflow.get_tracking_uri()):
        folder = sqlite_folder(uri)
        if folder is not None:
            return folder
    raise MlflowException(
        f"{SCHEME}: locations are relative to the folder of CLINRLHF_HOME's SQLite store "
        f"(sqlite:///<home>/{STORE_FILE}); the tracking URI in use is not one"
    )


class HomeArtifactRepository(LocalArtifactRepository):
    """A local artifact repository whose `clinrlhf-home:/<path>` is `<home>/<path>`."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        relative = urlparse(artifact_uri).path.lstrip("/")
        local = (home_of(tracking_uri) / relative).as_uri()
        super().__init__(local, tracking_uri=tracking_uri, registry_uri=registry_uri)


def register() -> None:
    """Make the scheme known to this process's MLflow (idempotent)."""
    _artifact_repository_registry.register(SCHEME, HomeArtifactRepository)


register()
