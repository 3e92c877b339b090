"""Where a promotion's change record and CHAI card live, and a rollback's change record: one MLflow
run per promotion or rollback in the experiment `clinrlhf-compliance`, apart from the training runs, so that the tracking server can
grant compliance officers read on it and deny it to ML engineers (deploy/mlflow/permissions.py).
Each record is logged as JSON (the record) and Markdown (its rendering); the model version names
the run (tag `clinrlhf.promotion.change_record_run_id`) and the promotion's governance record pins
both files' SHA-256 in the audit trail.

The run is left RUNNING while the alias moves and marked FINISHED after (FAILED if the move fails),
and readers only follow a FINISHED run that a version's tag names, so a failed promotion or rollback
leaves nothing that reads as a change record. A rollback's run is named by the version's tag
`clinrlhf.rollback.change_record_run_id` (the latest rollback to it; its governance record pins it)."""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from clinrlhf.compliance.chai_card import chai_card
from clinrlhf.compliance.change_record import VersionEvidence, change_record, record_sha256, rollback_record
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.evidence import gather
from clinrlhf.compliance.records_markdown import chai_card_markdown, change_record_markdown
from clinrlhf.compliance.registry import PIPELINE_RUN
from clinrlhf.lineage import home_artifacts
from clinrlhf.lineage.artifacts import read_artifact_text
from clinrlhf.lineage.chain import RunNotFound, load_chain
from clinrlhf.settings import Settings

COMPLIANCE_EXPERIMENT = "clinrlhf-compliance"
PROMOTION_TAGS = "clinrlhf.promotion."  # prefix of the tags a promotion sets on the version it promotes
ROLLBACK_TAGS = "clinrlhf.rollback."  # ... and a rollback on the version it restores
RECORD_RUN_TAG = PROMOTION_TAGS + "change_record_run_id"  # the run of the version's latest promotion records
ROLLBACK_RECORD_RUN_TAG = ROLLBACK_TAGS + "change_record_run_id"  # the run of the latest rollback's record
CHANGE_RECORD = "change-record"  # artifacts <name>.json and <name>.md of the record's run
CHAI_CARD = "chai-card"
VERSION_TAG = "clinrlhf.model_version"  # on the record's run: "<model>/<version>"
VERSION_RUN_TAG = "clinrlhf.version_run_id"  # on the record's run: the version's own (PPO) run
UNREADABLE = "not readable with these MLflow credentials, or the run was deleted"


@dataclass(frozen=True)
class PromotionRecords:
    change_record: dict[str, Any]
    chai_card: dict[str, Any]

    def digests(self) -> dict[str, str]:
        return {
            "change_record_sha256": record_sha256(self.change_record),
            "chai_card_sha256": record_sha256(self.chai_card),
        }

    def files(self) -> dict[str, str]:
        return change_record_files(self.change_record) | {
            f"{CHAI_CARD}.json": json.dumps(self.chai_card, indent=2),
            f"{CHAI_CARD}.md": chai_card_markdown(self.chai_card),
        }


def change_record_files(record: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Artifact (and export) file name -> content. The JSON keeps the record's own order (the
    guidance's); its SHA-256 is of the canonical, key-sorted form."""
    return {
        f"{prefix}{CHANGE_RECORD}.json": json.dumps(record, indent=2),
        f"{prefix}{CHANGE_RECORD}.md": change_record_markdown(record),
    }


def version_evidence(client: MlflowClient, mv: ModelVersion, tracking_uri: str) -> VersionEvidence | None:
    """The version with its pipeline run's evidence; None when that run is gone from the store."""
    try:
        chain = load_chain(client, mv.tags.get(PIPELINE_RUN) or mv.run_id or "")
    except RunNotFound:
        return None
    return VersionEvidence(mv, gather(client, chain, tracking_uri))


def build_records(
    client: MlflowClient,
    tracking_uri: str,
    mv: ModelVersion,
    previous: ModelVersion | None,
    criteria: AcceptanceCriteria,
    decision: dict[str, Any],
) -> PromotionRecords:
    new = _evidence(client, mv, tracking_uri)
    before = version_evidence(client, previous, tracking_uri) if previous is not None else None
    previous_version = str(previous.version) if previous is not None else None
    record = change_record(new, before, previous_version, criteria, decision)
    return PromotionRecords(record, chai_card(mv, new.evidence, criteria, decision))


def build_rollback_record(
    client: MlflowClient,
    tracking_uri: str,
    restored: ModelVersion,
    removed: ModelVersion,
    decision: dict[str, Any],
) -> dict[str, Any]:
    """The change record of a rollback (no CHAI card: the restored version's card, written when it was
    promoted, still describes it)."""
    back = _evidence(client, restored, tracking_uri)
    out = version_evidence(client, removed, tracking_uri)
    return rollback_record(back, out, str(removed.version), decision)


def _evidence(client: MlflowClient, mv: ModelVersion, tracking_uri: str) -> VersionEvidence:
    found = version_evidence(client, mv, tracking_uri)
    if found is None:
        raise RunNotFound(f"version {mv.version}'s pipeline run is not in this tracking store")
    return found


def _experiment_id(client: MlflowClient, settings: Settings) -> str:
    found = client.get_experiment_by_name(COMPLIANCE_EXPERIMENT)
    if found is not None:
        return found.experiment_id
    uri = settings.mlflow_tracking_uri
    if home_artifacts.is_home_store(uri, settings.resolved_home):
        location: str | None = home_artifacts.home_uri(home_artifacts.ARTIFACTS)
    elif uri.startswith(("http://", "https://")):
        location = None  # the tracking server's own artifact store (deploy/ creates this experiment)
    else:
        location = settings.mlflow_artifact_location
    try:
        return client.create_experiment(COMPLIANCE_EXPERIMENT, artifact_location=location)
    except MlflowException:  # created meanwhile by another promotion
        found = client.get_experiment_by_name(COMPLIANCE_EXPERIMENT)
        if found is None:
            raise
        return found.experiment_id


def start_records_run(
    client: MlflowClient, settings: Settings, mv: ModelVersion, change: str, files: dict[str, str]
) -> str:
    """Log `files` to a new run of the compliance experiment, named after the `change` ("promotion"
    or "rollback") and the version; it stays RUNNING until finish_records_run. A run that cannot be
    written whole is marked FAILED before the error goes on."""
    run = client.create_run(
        _experiment_id(client, settings),
        run_name=f"{change}-{mv.name}-v{mv.version}",
        tags={VERSION_TAG: f"{mv.name}/{mv.version}", VERSION_RUN_TAG: mv.run_id or ""},
    )
    try:
        for name, text in files.items():
            client.log_text(run.info.run_id, text, name)
    except BaseException:
        with suppress(Exception):  # the write's error is the one to report
            finish_records_run(client, run.info.run_id, completed=False)
        raise
    return run.info.run_id


def finish_records_run(client: MlflowClient, run_id: str, *, completed: bool) -> None:
    """FINISHED once the alias moved, FAILED if it did not: readers follow FINISHED runs only."""
    status = RunStatus.to_string(RunStatus.FINISHED if completed else RunStatus.FAILED)
    client.set_terminated(run_id, status)


def _finished(client: MlflowClient, run_id: str) -> bool:
    """Whether the change this run records took place. A version's tag can name a run whose change
    failed after the tags were set (the alias move or the audit commit), which must not read as one."""
    try:
        return client.get_run(run_id).info.status == RunStatus.to_string(RunStatus.FINISHED)
    except MlflowException:
        return True  # unreadable: the caller's read says so


@dataclass(frozen=True)
class StoredRecords:
    version: str
    run_id: str
    records: PromotionRecords | None
    problem: str | None = None  # why the records could not be read (permissions, deleted run)


def read_records(client: MlflowClient, mv: ModelVersion) -> StoredRecords | None:
    """The records of the version's latest promotion, or None if it was never promoted with them."""
    run_id = mv.tags.get(RECORD_RUN_TAG)
    if not run_id or not _finished(client, run_id):
        return None
    texts = [read_artifact_text(client, run_id, f"{name}.json") for name in (CHANGE_RECORD, CHAI_CARD)]
    if texts[0] is None or texts[1] is None:
        return StoredRecords(str(mv.version), run_id, None, UNREADABLE)
    return StoredRecords(
        str(mv.version), run_id, PromotionRecords(json.loads(texts[0]), json.loads(texts[1]))
    )


class RecordsUnreadable(LookupError):
    """A promoted version's records are named but cannot be read; the message is one line."""


def export_records(client: MlflowClient, versions: list[ModelVersion], folder: Path) -> list[Path]:
    """Write the JSON and Markdown of each promoted version's records under `folder`, as
    `<model>-v<version>-change-record.json` and so on; returns the paths written."""
    written = []
    for mv in versions:
        stored = read_records(client, mv)
        if stored is None:
            continue  # never promoted
        if stored.records is None:
            raise RecordsUnreadable(
                f"version {mv.version}'s change record (run {stored.run_id}) is {stored.problem}"
            )
        files = stored.records.files() | _rollback_files(client, mv)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = folder / f"{mv.name}-v{mv.version}-{name}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def _rollback_files(client: MlflowClient, mv: ModelVersion) -> dict[str, str]:
    """The change record of the latest rollback to `mv` (earlier ones: the audit trail's governance
    records pin them), as export file name -> content; {} if it was never rolled back to."""
    run_id = mv.tags.get(ROLLBACK_RECORD_RUN_TAG)
    if not run_id or not _finished(client, run_id):
        return {}
    text = read_artifact_text(client, run_id, f"{CHANGE_RECORD}.json")
    if text is None:
        raise RecordsUnreadable(
            f"version {mv.version}'s rollback change record (run {run_id}) is {UNREADABLE}"
        )
    return change_record_files(json.loads(text), prefix="rollback-")
