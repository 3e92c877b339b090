"""The PipelineConfig a pipeline run logged to MLflow, written whole and read back by one function.

The config is an artifact (`pipeline/config.json`), not a param: MLflow params hold at most a few
thousand characters, and a truncated JSON string cannot be read back. Runs logged before this module
kept the config in the param `pipeline.config`; the loader still reads those when they are whole.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from clinrlhf.pipeline.config import PipelineConfig, pipeline_config_from

CONFIG_ARTIFACT = "pipeline/config.json"
LEGACY_PARAM = "pipeline.config"
"""Where runs logged before the artifact kept the config: `json.dumps(asdict(config))[:6000]`."""


class ConfigNotLogged(LookupError):
    """The run holds no pipeline config (neither the artifact nor the legacy param)."""


class UnreadableConfig(ValueError):
    """The run logged a config that does not load as today's PipelineConfig."""

    def __init__(self, message: str, raw: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.raw = raw or {}
        """What was logged, as far as it parsed: lets a caller keep e.g. the seed."""


def log_pipeline_config(config: PipelineConfig) -> None:
    """Log `config` whole to the active MLflow run."""
    mlflow.log_dict(asdict(config), CONFIG_ARTIFACT)


def _logged_dict(client: MlflowClient, run_id: str) -> tuple[dict[str, Any], str]:
    """(the logged config as a dict, where it came from)."""
    names = {a.path for a in client.list_artifacts(run_id, CONFIG_ARTIFACT.rsplit("/", 1)[0])}
    if CONFIG_ARTIFACT in names:
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, CONFIG_ARTIFACT, tmp)
            return json.loads(Path(local).read_text()), f"MLflow artifact {CONFIG_ARTIFACT} of the run"
    text = client.get_run(run_id).data.params.get(LEGACY_PARAM)
    if text is None:
        raise ConfigNotLogged(f"run {run_id} logged no pipeline config")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:  # cut at 6000 characters by the old logging
        raise UnreadableConfig(f"run {run_id}: the param {LEGACY_PARAM} is truncated JSON") from None
    return raw, f"MLflow param {LEGACY_PARAM} of the run"


def load_logged_config(client: MlflowClient, run_id: str) -> tuple[PipelineConfig, str]:
    """The PipelineConfig run `run_id` logged (today's defaults for any setting it did not log), and
    where it was read from. Raises ConfigNotLogged, or UnreadableConfig for a config that no longer
    loads (an unknown or mistyped setting)."""
    try:
        raw, source = _logged_dict(client, run_id)
    except MlflowException as err:
        raise ConfigNotLogged(f"run {run_id}: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UnreadableConfig(f"run {run_id}: the logged config is not a JSON object")
    try:
        return pipeline_config_from(raw), source
    except (ValueError, TypeError) as err:
        raise UnreadableConfig(f"run {run_id}: {err}", raw) from None
