"""The pipeline's screening step publishes its quality report without saying who took part: no
pseudonym under a user-level unit, rows keyed by the enrolled roster under an event-level one.

Real parts: a SQLite store (quarantine audit events), the guideline check, and a SQLite MLflow store
whose every byte is read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from clinrlhf.feedback import Judgment
from clinrlhf.panel.session import PanelConfig
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.run import roster, screen_judgments
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.simulated import simulated_judgments
from clinrlhf.store import open_store
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World


@pytest.fixture()
def mlflow_store(tmp_path: Path) -> Iterator[Path]:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("screen", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield tmp_path
    mlflow.set_tracking_uri(previous)


def _screen(world: World, tmp_path: Path, config: PipelineConfig) -> tuple[list[Judgment], str]:
    judgments = simulated_judgments(world, generate_patients(world, 80, seed=2), reviewers_per_card=3)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with mlflow.start_run() as run:
        screen_judgments(store, judgments, world, tmp_path / "home", config)
    return judgments, run.info.run_id


def test_under_the_clinician_unit_the_quality_report_names_no_clinician(
    mlflow_store: Path, world: World
) -> None:
    config = PipelineConfig(reward=RewardConfig(privacy_unit="clinician"))
    judgments, run_id = _screen(world, mlflow_store, config)
    judged = {j.clinician for j in judgments}
    files = [mlflow_store / "mlflow.db", *(p for p in (mlflow_store / "artifacts").rglob("*") if p.is_file())]
    found = {str(p): [c for c in judged if c.encode() in p.read_bytes()] for p in files}
    assert not {path: names for path, names in found.items() if names}
    quality = json.loads(
        Path(
            MlflowClient().download_artifacts(run_id, "feedback/quality.json", str(mlflow_store))
        ).read_text()
    )
    assert quality["raters"] == [] and quality["clinicians_quarantined"] >= 1  # counts still published
    assert "withheld" in quality


def test_under_the_pair_unit_rows_follow_the_roster_enrolled_before_feedback(
    mlflow_store: Path, world: World
) -> None:
    # Eleven enrolled (panel_of(11, 1) adds "dr-0-2"), ten of them judge: the roster has a row for all.
    config = PipelineConfig(panel=replace(PanelConfig(), clinicians=11))
    enrolled = roster(config)
    judgments, run_id = _screen(world, mlflow_store, config)
    assert "dr-0-2" in enrolled and "dr-0-2" not in {j.clinician for j in judgments}
    quality = json.loads(
        Path(
            MlflowClient().download_artifacts(run_id, "feedback/quality.json", str(mlflow_store))
        ).read_text()
    )
    rows = {r["clinician"]: r for r in quality["raters"]}
    assert [r["clinician"] for r in quality["raters"]] == enrolled
    assert rows["dr-0-2"]["no_data"] and rows["dr-0-2"]["accuracy"] is None
    assert quality["quarantined"] == ["dr-adversary"] and rows["dr-adversary"]["quarantined"]


def test_the_guideline_safety_check_can_be_switched_off_from_the_pipeline_config(
    mlflow_store: Path, world: World
) -> None:
    # The ablation switch of issue 22: {"screening": {"safety": {"enabled": false}}}. Two of twenty
    # raters are blind to contraindications; Dawid-Skene alone does not flag them, the check does.
    from clinrlhf.panel.clinicians import panel_of
    from clinrlhf.panel.offline import practice_pair_reviews
    from clinrlhf.pipeline.config import load_pipeline_config

    raters = panel_of(20, 2, "contraindication-blind")
    blind = sorted(c.id for c in raters if c.blind_to_contraindications)
    judgments = practice_pair_reviews(world, raters, 1500, 0)
    file = mlflow_store / "off.json"
    file.write_text('{"screening": {"safety": {"enabled": false}}}')
    kept = {}
    for name, config in (("on", PipelineConfig()), ("off", load_pipeline_config(file))):
        store = open_store(f"sqlite:///{mlflow_store / f'{name}.db'}")
        with mlflow.start_run():
            kept[name] = screen_judgments(store, judgments, world, mlflow_store / name, config)
    assert not {j.clinician for j in kept["on"]} & set(blind)
    assert set(blind) <= {j.clinician for j in kept["off"]}
