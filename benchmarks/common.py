"""What the benchmark scripts share: opening a finished home's MLflow store read-only, finding its
newest pipeline run, seeding a store with cards, and writing results as strict JSON. Imported by the
scripts (their sibling)."""

from __future__ import annotations

import json
import logging
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Run
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from clinrlhf.lineage.runs import EXPERIMENT
from clinrlhf.settings import Settings
from clinrlhf.store import add_card, add_case, deidentify_case, deployment_store, record_audit, transaction
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import load_world


class NotAStore(Exception):
    """The home has no MLflow store, or its mlflow.db is not one."""


def open_client(home: Path) -> MlflowClient:
    """A client on HOME/mlflow.db. Refuses a missing or non-MLflow file before MLflow sees it: MLflow
    creates its tables in any SQLite file it opens, so the check reads the schema read-only."""
    db = home.expanduser().resolve() / "mlflow.db"
    if not db.is_file():
        raise NotAStore(
            f"{home}: no mlflow.db; is it a home where `clinrlhf quickstart` or `pipeline` finished?"
        )
    engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    try:
        with engine.connect() as con:
            tables = set(inspect(con).get_table_names())
    except SQLAlchemyError as err:
        raise NotAStore(f"{db}: not an MLflow store ({str(err.orig or err).splitlines()[0]})") from None
    finally:
        engine.dispose()
    if not {"runs", "tags", "params", "metrics"} <= tables:
        raise NotAStore(f"{db}: not an MLflow store (no runs table)")
    for noisy in ("mlflow", "alembic"):  # the store check logs at INFO on every open
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=f"sqlite:///{db}")


def finished_pipeline_runs(client: MlflowClient) -> list[Run]:
    """The FINISHED pipeline runs, newest first: a failed or running one has no complete eval."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return list(
        client.search_runs(
            [experiment.experiment_id],
            "tags.`clinrlhf.stage` = 'pipeline' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
        )
    )


def newest_pipeline_run(client: MlflowClient) -> str:
    """The newest FINISHED pipeline run's id; SystemExit with one line where there is none."""
    if client.get_experiment_by_name(EXPERIMENT) is None:
        raise SystemExit(f"no MLflow experiment {EXPERIMENT!r} in this store: no pipeline has run")
    runs = finished_pipeline_runs(client)
    if not runs:
        raise SystemExit("no finished pipeline run in this store")
    return runs[0].info.run_id


def seed_cards(settings: Settings, n: int, today: date) -> list[tuple[str, str]]:
    """`n` cards as the CDS service stores them; returns (card, first suggestion) ids."""
    world, key = load_world(), settings.deid_secret
    patients = generate_patients(world, n, seed=7, today=today)
    out = []
    with transaction(deployment_store(settings)) as session:
        for patient in patients:
            case, _ = add_case(session, deidentify_case(patient.bundle, key=key, today=today), source="cds")
            record_audit(session, actor="benchmark", action="C", entity_type="Case", entity_id=case.id)
            card = add_card(
                session,
                case_id=case.id,
                target="hypertension",
                prompt="treat hypertension ->",
                model_version="benchmark@1",
                suggestions=[("lisinopril", "lisinopril 10 mg"), ("amlodipine", "amlodipine 5 mg")],
            )
            record_audit(session, actor="benchmark", action="C", entity_type="Card", entity_id=card.id)
            out.append((card.id, card.suggestions[0].id))
    return out


def json_safe(value: Any) -> Any:
    """NaN and infinities as null (JSON has neither), numpy scalars as numbers, paths as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return json_safe(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, result: Any, *, newline: bool = False) -> None:
    """Strict JSON (json_safe) at `path`, its folder made; SystemExit with one line if it cannot."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(json_safe(result), indent=2, allow_nan=False) + ("\n" if newline else ""))
    except OSError as err:
        raise SystemExit(f"cannot write {path}: {err.strerror}") from None
