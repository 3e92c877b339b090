"""Suite-wide fixtures. MLflow keeps the tracking URI and the active experiment in process globals:
a test that points MLflow at its own temporary store must not leave the next test pointing there.
The synthetic world and the tokenizer built from its vocabulary are read-only and shared by the
library's, the privacy layer's and the services' tests, so they are built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import mlflow
import mlflow.tracking.fluent as fluent
import pytest
from transformers import PreTrainedTokenizerFast

from clinrlhf.policy import build_tokenizer
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.world import World, load_world


@pytest.fixture(autouse=True)
def _isolated_mlflow() -> Iterator[None]:
    uri = mlflow.get_tracking_uri() if os.environ.get("MLFLOW_TRACKING_URI") else None
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    fluent._active_experiment_id = None  # set by mlflow.set_experiment; no public reset exists
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.set_tracking_uri(uri or "")


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture(scope="session")
def tokenizer(world: World) -> PreTrainedTokenizerFast:
    return build_tokenizer(vocabulary_corpus(world))
