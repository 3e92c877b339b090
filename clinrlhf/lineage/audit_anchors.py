"""The audit trail's head, recorded in MLflow: an anchor outside the database.

Someone who can write the database can cut events off the end of the audit trail and leave a valid,
shorter chain. Every pipeline run records the head it saw as a tag, so `clinrlhf audit verify`
catches the cut even without its witness file, as long as the MLflow store is out of that person's
reach (a tracking server, or a store on other storage). The compliance report prints the same head.
"""

from __future__ import annotations

import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store.audit import last_link
from clinrlhf.store.audit_verify import Anchor, Head
from clinrlhf.store.db import consistent_read

AUDIT_HEAD_TAG = "clinrlhf.audit_head"


def current_head(session: Session) -> Head | None:
    """The last event of the chain, or None for an empty trail."""
    last = last_link(session)
    return None if last is None else Head(*last)


def anchor_audit_head(store: sessionmaker[Session]) -> Head | None:
    """Record the trail's current head on the active MLflow run (a no-op for an empty trail)."""
    with consistent_read(store) as session:
        head = current_head(session)
    if head is not None:
        mlflow.set_tag(AUDIT_HEAD_TAG, format_head(head))
    return head


def format_head(head: Head) -> str:
    return f"{head.seq}:{head.hash}"


def parse_head(value: str) -> Head | None:
    seq, _, digest = value.partition(":")
    return Head(int(seq), digest) if seq.isdigit() and len(digest) == 64 else None


def mlflow_anchors(client: MlflowClient) -> list[Anchor]:
    """Every head recorded by a run in the tracking store, deleted runs included."""
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    anchors: list[Anchor] = []
    if not experiments:
        return anchors
    runs = client.search_runs(
        experiments, f"tags.`{AUDIT_HEAD_TAG}` LIKE '%:%'", run_view_type=ViewType.ALL, max_results=50_000
    )
    for run in runs:
        head = parse_head(run.data.tags.get(AUDIT_HEAD_TAG, ""))
        if head is not None:
            anchors.append(Anchor(head, f"MLflow run {run.info.run_id}"))
    return anchors
