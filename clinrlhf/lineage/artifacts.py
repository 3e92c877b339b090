"""Reading one small artifact of a run back, where a missing artifact is a normal answer."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient


def read_artifact_text(client: MlflowClient, run_id: str, path: str) -> str | None:
    """The artifact's text, or None when the run did not log it (older runs, optional facts)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:  # MLflow raises several types for a missing artifact
            return None
        return Path(local).read_text(encoding="utf-8")
