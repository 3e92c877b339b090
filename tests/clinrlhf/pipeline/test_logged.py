"""The pipeline's config is logged whole to a real MLflow store and read back by one loader."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.logged import (
    LEGACY_PARAM,
    ConfigNotLogged,
    UnreadableConfig,
    load_logged_config,
    log_pipeline_config,
)
from clinrlhf.policy.lora_config import LoRAConfig


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("logged")
    return MlflowClient(uri)


def _big_config() -> PipelineConfig:
    """A config whose JSON is far longer than an MLflow param: 400 clinicians' accuracies."""
    accuracies = {f"clinician-{i:04d}": 0.5 + i / 1000 for i in range(400)}
    config = PipelineConfig(seed=7, test_patients=5, lora=LoRAConfig(rank=16))
    config = replace(config, reward=replace(config.reward, rater_accuracies=accuracies))
    assert len(json.dumps(asdict(config))) > 6000
    return config


def test_a_config_longer_than_a_param_reads_back_equal(client: MlflowClient) -> None:
    config = _big_config()
    with mlflow.start_run() as run:
        log_pipeline_config(config)
    loaded, source = load_logged_config(client, run.info.run_id)
    assert loaded == config
    assert "artifact" in source


def test_an_old_run_with_the_whole_config_in_the_param_still_loads(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param(LEGACY_PARAM, json.dumps({"seed": 3, "heldout_patients": 9}))
    loaded, source = load_logged_config(client, run.info.run_id)
    assert (loaded.seed, loaded.test_patients) == (3, 9)  # the reported cohort's old name
    assert loaded.ppo == PipelineConfig().ppo  # what it did not log: today's defaults
    assert LEGACY_PARAM in source


def test_an_old_run_with_a_truncated_param_is_unreadable_not_a_crash(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param(LEGACY_PARAM, json.dumps(asdict(_big_config()))[:6000])
    with pytest.raises(UnreadableConfig, match="truncated"):
        load_logged_config(client, run.info.run_id)


def test_an_unknown_setting_is_unreadable_and_keeps_what_was_logged(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        mlflow.log_dict({"seed": 4, "no_such_setting": 1}, "pipeline/config.json")
    with pytest.raises(UnreadableConfig, match="no_such_setting") as err:
        load_logged_config(client, run.info.run_id)
    assert err.value.raw["seed"] == 4


def test_a_run_without_a_config_says_so(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("other", 1)
    with pytest.raises(ConfigNotLogged):
        load_logged_config(client, run.info.run_id)
