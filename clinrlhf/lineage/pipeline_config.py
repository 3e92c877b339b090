"""Where a pipeline run keeps its whole PipelineConfig in MLflow, read back as raw JSON and digested.

Apart from `clinrlhf.pipeline.logged` (which turns the JSON into today's PipelineConfig) so that the
compliance side can pin a run's configuration without importing the trainers.

The config is an artifact (`pipeline/config.json`), not a param: MLflow params hold at most a few
thousand characters, and a truncated JSON string cannot be read back. Runs logged before the
artifact kept it in the param `pipeline.config`; the reader still reads those when they are whole.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

CONFIG_ARTIFACT = "pipeline/config.json"
LEGACY_PARAM = "pipeline.config"
"""Where runs logged before the artifact kept the config: `json.dumps(asdict(config))[:6000]`."""


class ConfigNotLogged(LookupError):
    """The run holds no pipeline config (neither the artifact nor the legacy param)."""


class TruncatedConfig(ValueError):
    """The legacy param holds JSON cut at 6,000 characters."""


def logged_config_json(client: MlflowClient, run_id: str) -> tuple[Any, str]:
    """(the logged config as parsed JSON, where it came from). Raises ConfigNotLogged,
    TruncatedConfig, or MlflowException when the store cannot be read."""
    names = {a.path for a in client.list_artifacts(run_id, CONFIG_ARTIFACT.rsplit("/", 1)[0])}
    if CONFIG_ARTIFACT in names:
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, CONFIG_ARTIFACT, tmp)
            return json.loads(Path(local).read_text()), f"MLflow artifact {CONFIG_ARTIFACT} of the run"
    text = client.get_run(run_id).data.params.get(LEGACY_PARAM)
    if text is None:
        raise ConfigNotLogged(f"run {run_id} logged no pipeline config")
    try:
        return json.loads(text), f"MLflow param {LEGACY_PARAM} of the run"
    except json.JSONDecodeError:  # cut at 6000 characters by the old logging
        raise TruncatedConfig(f"run {run_id}: the param {LEGACY_PARAM} is truncated JSON") from None


def canonical_sha256(value: Any) -> str:
    """SHA-256 of `value` as canonical JSON (keys sorted, no whitespace): the same digest for the
    same content however the file holding it was formatted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
