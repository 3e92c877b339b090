"""Two miniature pipeline runs in a real SQLite MLflow store, recorded once per session and copied
for each test that changes the registry, so tests stay independent without paying for a new store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service import utils as tracking_utils
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.lineage.runs import configure_mlflow
from clinrlhf.pipeline.sample_run import SampleRun, record_sample_run
from clinrlhf.settings import Settings
from clinrlhf.store import deployment_store

torch.set_num_threads(1)  # the machine is shared; nothing here needs more


@dataclass
class Sample:
    settings: Settings
    client: MlflowClient
    sessions: sessionmaker[Session]
    good: SampleRun  # passes the default acceptance criteria
    poor: SampleRun  # concordance 0.5: fails them


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleRun, SampleRun]:
    home = tmp_path_factory.mktemp("lineage-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings(home=home)
        good = record_sample_run(settings)
        poor = record_sample_run(settings, concordance=0.5, unsafe_rate=0.1, seed=1)
    return home, good, poor


@pytest.fixture
def sample(sample_template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sample]:
    template, good, poor = sample_template
    home = tmp_path / "home"
    # The runs' artifacts are copied too: their locations are relative to the home (home_artifacts).
    # MLflow caches each run's artifact repository by run id, as built for the template: forget them.
    shutil.copytree(template, home)
    tracking_utils._artifact_repos_cache.clear()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CLINRLHF_HOME", str(home))
    settings = Settings(home=home)
    configure_mlflow(settings)
    yield Sample(
        settings,
        MlflowClient(settings.mlflow_tracking_uri),
        deployment_store(settings),
        good,
        poor,
    )
