"""The PipelineConfig a pipeline run logged to MLflow, written whole and read back by one function.

Where it lives in MLflow, and its raw reader, are `clinrlhf.lineage.pipeline_config`'s.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clinrlhf.lineage.pipeline_config import (
    CONFIG_ARTIFACT,
    LEGACY_PARAM,
    ConfigNotLogged,
    TruncatedConfig,
    logged_config_json,
)
from clinrlhf.pipeline.config import PipelineConfig, pipeline_config_from

__all__ = [
    "CONFIG_ARTIFACT",
    "LEGACY_PARAM",
    "ConfigNotLogged",
    "UnreadableConfig",
    "load_logged_config",
    "log_pipeline_config",
]


class UnreadableConfig(ValueError):
    """The run logged a config that does not load as today's PipelineConfig."""

    def __init__(self, message: str, raw: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.raw = raw or {}
        """What was logged, as far as it parsed: lets a caller keep e.g. the seed."""


def log_pipeline_config(config: PipelineConfig) -> None:
    """Log `config` whole to the active MLflow run."""
    mlflow.log_dict(asdict(config), CONFIG_ARTIFACT)


def load_logged_config(client: MlflowClient, run_id: str) -> tuple[PipelineConfig, str]:
    """The PipelineConfig run `run_id` logged (today's defaults for any setting it did not log), and
    where it was read from. Raises ConfigNotLogged, or UnreadableConfig for a config that no longer
    loads (an unknown or mistyped setting)."""
    try:
        raw, source = logged_config_json(client, run_id)
    except MlflowException as err:
        raise ConfigNotLogged(f"run {run_id}: {str(err).splitlines()[0]}") from None
    except TruncatedConfig as err:
        raise UnreadableConfig(str(err)) from None
    if not isinstance(raw, dict):
        raise UnreadableConfig(f"run {run_id}: the logged config is not a JSON object")
    try:
        return pipeline_config_from(raw), source
    except (ValueError, TypeError) as err:
        raise UnreadableConfig(f"run {run_id}: {err}", raw) from None
