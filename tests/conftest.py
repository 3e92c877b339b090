"""Suite-wide isolation. MLflow keeps the tracking URI and the active experiment in process globals;
a test that points MLflow at its own temporary store must not leave the next test pointing there."""

from __future__ import annotations

import os
from collections.abc import Iterator

import mlflow
import mlflow.tracking.fluent as fluent
import pytest


@pytest.fixture(autouse=True)
def _isolated_mlflow() -> Iterator[None]:
    uri = mlflow.get_tracking_uri() if os.environ.get("MLFLOW_TRACKING_URI") else None
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None  # set by mlflow.set_experiment; no public reset exists
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(uri or "")
