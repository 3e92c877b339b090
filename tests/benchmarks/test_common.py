"""benchmarks/common.py: a home's MLflow store is opened read-only and refused before MLflow would
write to it; the newest finished pipeline run is found through MLflow's API; JSON is strict."""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # the scripts' siblings

from common import (  # noqa: E402
    NotAStore,
    finished_pipeline_runs,
    json_safe,
    newest_pipeline_run,
    open_client,
    seed_cards,
)

from clinrlhf.lineage.runs import EXPERIMENT  # noqa: E402
from clinrlhf.settings import Settings  # noqa: E402
from clinrlhf.store import deployment_store, transaction  # noqa: E402
from clinrlhf.store.models import Card  # noqa: E402


@pytest.mark.parametrize("content", [None, b"", b"not a database"], ids=["missing", "empty", "text"])
def test_a_home_without_an_mlflow_store_is_refused_and_left_as_it_was(
    tmp_path: Path, content: bytes | None
) -> None:
    db = tmp_path / "mlflow.db"
    if content is not None:
        db.write_bytes(content)
    with pytest.raises(NotAStore):
        open_client(tmp_path)
    assert (db.read_bytes() if db.exists() else None) == content  # MLflow created no tables in it


def test_an_sqlite_file_of_another_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("create table cards (id text)")
    with pytest.raises(NotAStore, match="not an MLflow store"):
        open_client(tmp_path)


def test_the_newest_finished_pipeline_run_is_found(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    writer = MlflowClient(uri)
    experiment = writer.create_experiment(EXPERIMENT)
    ids = []
    for start, status in ((1000, "FINISHED"), (2000, "FINISHED"), (3000, "FAILED")):
        run = writer.create_run(experiment, start_time=start, tags={"clinrlhf.stage": "pipeline"})
        writer.set_terminated(run.info.run_id, status)
        ids.append(run.info.run_id)
    stage = writer.create_run(experiment, start_time=4000, tags={"clinrlhf.stage": "eval"})
    writer.set_terminated(stage.info.run_id, "FINISHED")
    mlflow.set_tracking_uri(uri)
    client = open_client(tmp_path)
    assert [r.info.run_id for r in finished_pipeline_runs(client)] == [ids[1], ids[0]]
    assert newest_pipeline_run(client) == ids[1]


def test_a_store_where_no_pipeline_ran_exits_with_one_line(tmp_path: Path) -> None:
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()  # an empty, valid store
    with pytest.raises(SystemExit, match="no pipeline has run"):
        newest_pipeline_run(open_client(tmp_path))


def test_json_safe_makes_strict_json() -> None:
    value = {"inf": math.inf, "nan": [math.nan], "np": np.float32(0.5), "path": Path("/x"), 1: (2,)}
    assert json.dumps(json_safe(value), allow_nan=False) == (
        '{"inf": null, "nan": [null], "np": 0.5, "path": "/x", "1": [2]}'
    )


def test_seed_cards_stores_cards_as_the_cds_service_does(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # development keys, generated under the home
    cards = seed_cards(settings, 3, date(2026, 3, 1))
    assert len(cards) == len({card for card, _ in cards}) == 3
    with transaction(deployment_store(settings)) as session:
        stored = {c.id: [s.id for s in c.suggestions] for c in session.scalars(select(Card))}
    assert all(stored[card][0] == suggestion for card, suggestion in cards)
