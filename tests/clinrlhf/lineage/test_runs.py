"""The MLflow experiment reads as model training, and each run says what it is and what came of it."""

import mlflow
import pytest

from clinrlhf.lineage.runs import EXPERIMENT, configure_mlflow, run_ui_url
from clinrlhf.settings import Settings

NOTE = "mlflow.note.content"  # what the MLflow UI shows as a run's description
# MLflow 3's experiment type: "custom_model_development" is what its UI calls model training.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def test_the_experiment_opens_in_model_training_mode(sample):
    experiment = sample.client.get_experiment_by_name(EXPERIMENT)
    # Without the tag MLflow 3's UI asks, and then defaults to GenAI (traces, "Detect Issues").
    assert experiment.tags[EXPERIMENT_KIND] == MODEL_TRAINING


def test_an_experiment_made_before_the_tag_existed_gets_it_when_opened(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(home=tmp_path / "home")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=settings.mlflow_artifact_location)
    configure_mlflow(settings)
    assert mlflow.get_experiment_by_name(EXPERIMENT).tags[EXPERIMENT_KIND] == MODEL_TRAINING


def test_every_run_has_a_description_naming_its_stage(sample):
    runs = {"pipeline": sample.good.pipeline_run_id, **sample.good.stages}
    for stage, run_id in runs.items():
        note = sample.client.get_run(run_id).data.tags.get(NOTE, "")
        assert note.strip(), f"the {stage} run has no description"
    notes = {sample.client.get_run(r).data.tags[NOTE] for r in runs.values()}
    assert len(notes) == len(runs)  # each says what its own stage did


def test_the_pipeline_run_carries_the_headline(sample):
    parent = sample.client.get_run(sample.good.pipeline_run_id)
    ev = sample.client.get_run(sample.good.stages["eval"]).data.metrics
    reward = sample.client.get_run(sample.good.stages["reward"]).data.metrics
    ppo = sample.client.get_run(sample.good.stages["ppo"]).data.metrics
    got = parent.data.metrics
    assert got["pipeline.before.concordance"] == pytest.approx(ev["eval.before.concordance"])
    assert got["pipeline.after.concordance"] == pytest.approx(ev["eval.concordance"])
    assert got["pipeline.before.unsafe_rate"] == pytest.approx(ev["eval.before.unsafe_rate"])
    assert got["pipeline.after.unsafe_rate"] == pytest.approx(ev["eval.unsafe_rate"])
    assert got["pipeline.epsilon"] == pytest.approx(reward["dp.epsilon"])
    assert got["pipeline.kl"] == pytest.approx(ppo["ppo.final_kl"])
    # The description states the same figures, for whoever opens the run in the UI.
    note = parent.data.tags[NOTE]
    assert f"{ev['eval.concordance']:.3f}" in note and f"{reward['dp.epsilon']:.2f}" in note


def test_the_ui_link_opens_the_run_in_model_training_mode(sample):
    run_id = sample.good.pipeline_run_id
    experiment_id = sample.client.get_run(run_id).info.experiment_id
    url = run_ui_url(sample.settings.mlflow_tracking_uri, run_id)
    assert (
        url
        == f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    )
