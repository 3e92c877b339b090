"""Training data as MLflow datasets (`mlflow.data`), named by our own SHA-256 of the exact bytes.

MLflow's default digest hashes only the first 10,000 rows into 8 hex characters, and its store
caps a digest at 36 characters (`MAX_DATASET_DIGEST_SIZE`, checked in `log_inputs`). So the digest
is the first 36 hex characters (144 bits) of our SHA-256, and the full SHA-256 travels with it as
the input tag `clinrlhf.sha256` (and as the run tag `clinrlhf.dataset_sha256`): `sha256sum` of the
file reproduces both.

The feedback snapshot itself stays where it was written (`$CLINRLHF_HOME/snapshots/<sha256>.ndjson`):
by default MLflow gets its digest, its row count and column names, and its local path as the
dataset's source, so whoever can read the tracking store cannot read the judgments.
`log_file=True` also copies the file under `snapshot/`, for a store as closely held as the home.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

DIGEST_CHARS = 36  # mlflow.utils.validation.MAX_DATASET_DIGEST_SIZE
SHA256_TAG = "clinrlhf.sha256"
SNAPSHOT_ARTIFACTS = "snapshot"
SNAPSHOTS_FOLDER = "snapshots"  # $CLINRLHF_HOME/snapshots/<sha256>.ndjson
# The dataset inputs of the PPO and eval runs (log_rows_dataset).
PPO_PROMPTS_DATASET = "ppo-prompts"
TEST_DATASET = "test-scenarios"
EXAMPLES_ARTIFACTS = "examples"


class DigestMismatchError(ValueError):
    """The file's bytes do not hash to the SHA-256 it is logged under."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mlflow_digest(sha256: str) -> str:
    return sha256[:DIGEST_CHARS]


def _source(uri: str) -> DatasetSource:
    # MLflow registers the `file` scheme twice and warns that the source is ambiguous; both
    # candidates are the same class, so the warning says nothing here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return resolve_dataset_source(uri)
        except MlflowException:  # mlflow-artifacts:/ (a tracking server's store) has no dataset source
            return CodeDatasetSource(tags={"mlflow.artifact_uri": uri})


def _log(frame: pd.DataFrame, sha256: str, name: str, source_uri: str, context: str) -> PandasDataset:
    dataset = from_pandas(frame, source=_source(source_uri), name=name, digest=mlflow_digest(sha256))
    mlflow.log_input(dataset, context=context, tags={SHA256_TAG: sha256})
    return dataset


def log_snapshot_dataset(
    path: Path,
    sha256: str,
    name: str = "feedback-snapshot",
    context: str = "training",
    *,
    log_file: bool = False,
) -> PandasDataset:
    """Log the de-identified feedback snapshot to the active run as a dataset input whose digest is
    our SHA-256 and whose source is the local file; with `log_file`, the file too, under `snapshot/`.
    Refuses a file whose bytes do not match `sha256`."""
    actual = file_sha256(path)
    if actual != sha256:
        raise DigestMismatchError(f"{path.name} hashes to {actual}, not {sha256}")
    frame = pd.read_json(path, lines=True, dtype=False) if path.stat().st_size else pd.DataFrame()
    uri = path.resolve().as_uri()
    if log_file:
        mlflow.log_artifact(str(path), artifact_path=SNAPSHOT_ARTIFACTS)
        uri = mlflow.get_artifact_uri(f"{SNAPSHOT_ARTIFACTS}/{path.name}")
    return _log(frame, sha256, name, uri, context)


def snapshot_source(run: Run, home: Path | None = None) -> Path | None:
    """The local file a run's feedback snapshot was logged from (the dataset input's source), or
    None when the run logged none or its source is not a local file. MLflow's local source holds an
    absolute path; with `home`, a snapshot kept in a home's `snapshots/` is found in `home`'s, so a
    copied home reads its own copy."""
    for item in run.inputs.dataset_inputs if run.inputs else ():
        if {t.key for t in item.tags} & {SHA256_TAG} and item.dataset.source_type == "local":
            uri = json.loads(item.dataset.source).get("uri", "")
            parsed = urlparse(uri)
            if parsed.scheme in ("", "file"):
                path = Path(unquote(parsed.path))
                if home is not None and path.parent.name == SNAPSHOTS_FOLDER:
                    return home / SNAPSHOTS_FOLDER / path.name
                return path
    return None


def examples_ndjson(examples: list[tuple[str, str]]) -> str:
    """The examples as clinrlhf.pipeline.cohorts.examples_sha256 hashes them: sorted-key JSON lines."""
    return "".join(json.dumps({"prompt": p, "response": r}, sort_keys=True) + "\n" for p, r in examples)


def log_examples_dataset(
    examples: list[tuple[str, str]], sha256: str, name: str = "historical-practice", context: str = "training"
) -> PandasDataset:
    """Log (prompt, response) training examples, hashed as `examples_sha256` hashes them (sorted-key
    JSON lines), as an artifact and a dataset input of the active run."""
    text = examples_ndjson(examples)
    actual = hashlib.sha256(text.encode()).hexdigest()
    if actual != sha256:
        raise DigestMismatchError(f"the examples hash to {actual}, not {sha256}")
    filename = f"{EXAMPLES_ARTIFACTS}/{sha256}.ndjson"
    mlflow.log_text(text, filename)
    frame = pd.DataFrame(examples, columns=["prompt", "response"])
    uri = mlflow.get_artifact_uri(filename)
    return _log(frame, sha256, name, uri, context)


def prompt_rows(prompts: list[str]) -> list[dict[str, str]]:
    return [{"prompt": p} for p in prompts]


def log_rows_dataset(rows: list[dict[str, str]], name: str, context: str) -> PandasDataset:
    """Log rows a stage read (PPO's prompts, the held-out scenarios) as a dataset input of the active
    run: digest, row count and columns, named by the SHA-256 of their sorted-key JSON lines. The rows
    themselves stay out of MLflow, as the snapshot's do."""
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    sha256 = hashlib.sha256(text.encode()).hexdigest()
    source = CodeDatasetSource(tags={"clinrlhf.dataset": name})  # built in memory by the stage
    dataset = from_pandas(pd.DataFrame(rows), source=source, name=name, digest=mlflow_digest(sha256))
    mlflow.log_input(dataset, context=context, tags={SHA256_TAG: sha256})
    return dataset
