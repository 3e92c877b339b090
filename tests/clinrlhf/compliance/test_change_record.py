"""Every promotion writes a change record (FDA PCCP: description of the modification, modification
protocol, impact assessment against the previous production version) and a CHAI Applied Model
Card, to a run of the compliance experiment in MLflow, pinned by the promotion's governance record;
every rollback, a change record of its own. A refused promotion writes neither. Real SQLite MLflow
store, real sample runs."""

from __future__ import annotations

import hashlib
import json

import pytest
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from clinrlhf.compliance import promotion_records
from clinrlhf.compliance.approval import approve
from clinrlhf.compliance.change_record import record_sha256
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.promotion import PROMOTION_TAGS, ROLLBACK_TAGS, PromotionRefused, promote, rollback
from clinrlhf.compliance.promotion_records import (
    COMPLIANCE_EXPERIMENT,
    RECORD_RUN_TAG,
    ROLLBACK_RECORD_RUN_TAG,
    PromotionRecords,
    export_records,
    read_records,
)
from clinrlhf.compliance.registry import EVAL_RUN, MODEL_NAME, production_version
from clinrlhf.identity import Principal
from clinrlhf.lineage.artifacts import read_artifact_text
from clinrlhf.lineage.datasets import SHA256_TAG, TEST_DATASET

OFFICER = Principal(sub="officer-1", role="compliance", scopes=frozenset(), issuer="test", name="Dr. Ada Lee")
LENIENT = AcceptanceCriteria(min_concordance=0.4, max_unsafe_rate=0.2, max_subgroup_gap=0.5)


def _promote(sample, version, criteria=LENIENT):
    approve(sample.client, sample.sessions, version, OFFICER, sample.settings.deid_secret, criteria=criteria)
    return promote(sample.client, sample.sessions, sample.settings, version, criteria, OFFICER)


def _version(sample, version):
    return sample.client.get_model_version(MODEL_NAME, version)


def _records(sample, version) -> PromotionRecords:
    stored = read_records(sample.client, _version(sample, version))
    assert stored is not None and stored.records is not None
    return stored.records


def _eval_metrics(sample, version) -> dict[str, float]:
    return sample.client.get_run(_version(sample, version).tags[EVAL_RUN]).data.metrics


def test_the_first_promotion_writes_both_records_to_the_compliance_experiment(sample) -> None:
    _promote(sample, sample.good.version)
    mv = _version(sample, sample.good.version)
    run = sample.client.get_run(mv.tags[RECORD_RUN_TAG])
    experiment = sample.client.get_experiment(run.info.experiment_id)
    assert experiment.name == COMPLIANCE_EXPERIMENT  # apart from the training runs
    assert run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    names = {a.path for a in sample.client.list_artifacts(run.info.run_id)}
    assert names == {"change-record.json", "change-record.md", "chai-card.json", "chai-card.md"}

    record = json.loads(read_artifact_text(sample.client, run.info.run_id, "change-record.json") or "{}")
    assert record["version"] == sample.good.version and record["previous_version"] == "none"
    assert record["impact_assessment"]["compared with"].startswith("none: this is the first version")
    changes = record["description_of_modification"]["changes"]
    assert all(c["previous"] == "none" and c["changed"] for c in changes)
    assert record["promoted"]["name"] == "Dr. Ada Lee"
    markdown = read_artifact_text(sample.client, run.info.run_id, "change-record.md") or ""
    assert "Previous production version: none." in markdown and "## Impact assessment" in markdown


def test_the_governance_record_pins_both_files(sample) -> None:
    _promote(sample, sample.good.version)
    mv = _version(sample, sample.good.version)
    governance = json.loads(mv.tags[PROMOTION_TAGS + "record"])
    stored = read_records(sample.client, mv)
    assert stored is not None and stored.records is not None
    assert governance["change_record_sha256"] == record_sha256(stored.records.change_record)
    assert governance["chai_card_sha256"] == record_sha256(stored.records.chai_card)
    assert governance["change_record_run_id"] == mv.tags[RECORD_RUN_TAG]


def test_the_modification_protocol_names_the_data_training_and_criteria_that_produced_it(sample) -> None:
    _promote(sample, sample.good.version)
    record = _records(sample, sample.good.version).change_record
    protocol = record["modification_protocol"]
    reward = sample.client.get_run(sample.good.stages["reward"])
    assert protocol["data"]["feedback snapshot SHA-256"] == reward.data.tags["clinrlhf.dataset_sha256"]
    assert protocol["data"]["feedback"]["judgments"] == 24  # the sample snapshot: 18 pairwise + 6 CDS
    cohorts = {
        (c["attribute"], c["group"]): c["n"] for c in protocol["data"]["held-out evaluation"]["cohorts"]
    }
    assert cohorts[("sex", "female")] == int(_eval_metrics(sample, sample.good.version)["eval.n.sex.female"])
    training = protocol["training"]
    assert {r["stage"]: r["run"] for r in training["stage runs"]} == sample.good.stages
    assert len(training["training config SHA-256"]) == 64
    assert protocol["acceptance_criteria"]["criteria"] == LENIENT.to_dict()
    assert protocol["acceptance_criteria"]["all passed"] is True


def test_the_impact_assessment_sets_the_new_version_beside_the_previous_production_version(sample) -> None:
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    record = _records(sample, sample.poor.version).change_record
    assert record["previous_version"] == sample.good.version
    impact = record["impact_assessment"]
    assert impact["compared with"].startswith(f"version {sample.good.version}")
    old, new = _eval_metrics(sample, sample.good.version), _eval_metrics(sample, sample.poor.version)
    rows = {(r["attribute"], r["group"]): r for r in impact["subgroups"]}
    assert len(rows) == 5  # sex: 2 groups, age band: 3
    for (attribute, group), row in rows.items():
        for metric in ("concordance", "unsafe_rate"):
            key = f"eval.{metric}.{attribute}.{group}"
            assert row[metric]["previous"] == pytest.approx(old[key])
            assert row[metric]["new"] == pytest.approx(new[key])
            assert row[metric]["difference"] == pytest.approx(new[key] - old[key])
    assert impact["overall"]["concordance"]["difference"] < 0  # the poor version is worse: said plainly
    changed = {c["item"]: c["changed"] for c in record["description_of_modification"]["changes"]}
    assert changed["policy weights SHA-256"] and changed["pipeline run"]
    assert not changed["de-identification config SHA-256"]  # both runs used the same configuration


def test_the_record_pins_the_whole_pipeline_config_not_only_the_stage_params(sample) -> None:
    """Cohort sizes, the formulary and the prompt source are no stage run's params, so the training
    config digest alone would not see them change; the logged PipelineConfig's digest does."""
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    record = _records(sample, sample.poor.version).change_record
    changes = {c["item"]: c for c in record["description_of_modification"]["changes"]}
    item = changes["pipeline config SHA-256"]
    logged = json.loads(
        read_artifact_text(sample.client, sample.poor.pipeline_run_id, "pipeline/config.json") or "{}"
    )
    canonical = json.dumps(logged, sort_keys=True, separators=(",", ":")).encode()
    assert item["new"] == hashlib.sha256(canonical).hexdigest()
    assert item["changed"] is True  # the two sample pipelines ran with other seeds
    assert changes["training config SHA-256"]["changed"] is False  # which no stage param shows
    assert record["modification_protocol"]["training"]["pipeline config SHA-256"] == item["new"]


def test_the_impact_assessment_says_whether_both_versions_were_tested_on_the_same_patients(sample) -> None:
    """A difference is a change of the model only when both eval runs read the same held-out
    scenarios; the record names each run's scenarios by the SHA-256 its eval run logged and says so."""
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    record = _records(sample, sample.poor.version).change_record

    def scenarios(version: str) -> str:
        run = sample.client.get_run(_version(sample, version).tags[EVAL_RUN])
        (item,) = [i for i in run.inputs.dataset_inputs if i.dataset.name == TEST_DATASET]
        return {t.key: t.value for t in item.tags}[SHA256_TAG]

    changes = {c["item"]: c for c in record["description_of_modification"]["changes"]}
    item = changes["held-out scenarios SHA-256"]
    assert item["new"] == scenarios(sample.poor.version) and item["previous"] == scenarios(
        sample.good.version
    )
    assert item["changed"] is False  # the sample's two versions were tested on the same scenarios
    assert "on the same held-out scenarios" in record["impact_assessment"]["compared with"]


def test_the_kind_of_modification_states_only_what_the_runs_show(sample) -> None:
    """The policy's architecture is not among what MLflow holds per version (the training config
    digest covers the stage runs' parameters), so the record does not claim it stayed the same; it
    names the stage runs that made the version."""
    _promote(sample, sample.good.version)
    kind = _records(sample, sample.good.version).change_record["description_of_modification"]["kind"]
    assert "architecture" not in kind
    assert all(f"{stage} run {run}" in kind for stage, run in sample.good.stages.items())


def test_a_refused_promotion_writes_no_record(sample) -> None:
    with pytest.raises(PromotionRefused, match="no approval"):
        promote(sample.client, sample.sessions, sample.settings, sample.good.version, LENIENT, OFFICER)
    assert RECORD_RUN_TAG not in _version(sample, sample.good.version).tags
    experiment = sample.client.get_experiment_by_name(COMPLIANCE_EXPERIMENT)
    assert experiment is None or not sample.client.search_runs([experiment.experiment_id])


def test_the_chai_card_is_filled_from_the_run_and_says_where_it_has_no_source(sample) -> None:
    _promote(sample, sample.good.version)
    card = _records(sample, sample.good.version).chai_card
    sections = ("BasicInfo", "ReleaseInfo", "ModelSummary", "UsesAndDirections", "Warnings")
    assert set(sections) | {"TrustIngredients", "KeyMetrics", "Resources"} <= set(card)
    metrics = _eval_metrics(sample, sample.good.version)
    efficacy = card["KeyMetrics"]["UsefulnessUsabilityEfficacy"]["Results"][0]["value"]
    assert efficacy.startswith(f"{metrics['eval.concordance']:.3f} (95% CI")
    fairness = card["KeyMetrics"]["FairnessEquity"]["Results"]
    assert {r["label"].split(" ")[0] for r in fairness} >= {"sex=female", "age_band=20-39"}
    assert card["ReleaseInfo"]["ReleaseVersion"].startswith(f"{MODEL_NAME} v{sample.good.version}")
    assert card["ReleaseInfo"]["RegulatoryApproval"].startswith("not recorded")  # nothing invented
    assert card["Warnings"]["ClinicalRiskLevel"].startswith("not recorded")


def test_a_promotion_whose_change_record_cannot_be_written_is_refused_and_the_alias_stays(sample) -> None:
    """The compliance experiment deleted (as a store that refuses the write would): no record, no
    promotion, and one line saying why."""
    experiment = sample.client.create_experiment(COMPLIANCE_EXPERIMENT)
    sample.client.delete_experiment(experiment)
    approve(
        sample.client,
        sample.sessions,
        sample.good.version,
        OFFICER,
        sample.settings.deid_secret,
        criteria=LENIENT,
    )
    with pytest.raises(PromotionRefused, match="cannot write the change record to MLflow"):
        promote(sample.client, sample.sessions, sample.settings, sample.good.version, LENIENT, OFFICER)
    assert production_version(sample.client) is None
    assert RECORD_RUN_TAG not in _version(sample, sample.good.version).tags


# --- rollback ------------------------------------------------------------------------------------


def _promote_both_and_roll_back(sample):
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    promoted = _records(sample, sample.good.version).change_record
    rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    return promoted


def test_a_rollback_writes_a_change_record_pinned_by_its_governance_record(sample) -> None:
    """Putting an earlier version back is a change to what serves patients: it gets a record of its
    own (the version restored against the one taken out), not silence."""
    _promote_both_and_roll_back(sample)
    mv = _version(sample, sample.good.version)
    governance = json.loads(mv.tags[ROLLBACK_TAGS + "record"])
    run_id = governance["change_record_run_id"]
    assert mv.tags[ROLLBACK_TAGS + "change_record_run_id"] == mv.tags[ROLLBACK_RECORD_RUN_TAG] == run_id
    run = sample.client.get_run(run_id)
    assert sample.client.get_experiment(run.info.experiment_id).name == COMPLIANCE_EXPERIMENT
    assert run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert {a.path for a in sample.client.list_artifacts(run_id)} == {
        "change-record.json",
        "change-record.md",
    }
    record = json.loads(read_artifact_text(sample.client, run_id, "change-record.json") or "{}")
    assert governance["change_record_sha256"] == record_sha256(record)
    assert record["change"] == "rollback" and record["rolled_back"]["name"] == "Dr. Ada Lee"
    assert (record["version"], record["previous_version"]) == (sample.good.version, sample.poor.version)
    assert "rollback" in record["description_of_modification"]["summary"]
    acceptance = record["modification_protocol"]["acceptance_criteria"]
    assert acceptance["re-checked"] is False and sample.good.version in acceptance["why"]
    markdown = read_artifact_text(sample.client, run_id, "change-record.md") or ""
    assert markdown.startswith(f"# Change record (rollback): {MODEL_NAME} version {sample.good.version}")


def test_a_rollbacks_impact_assessment_sets_the_restored_version_beside_the_one_taken_out(sample) -> None:
    _promote_both_and_roll_back(sample)
    run_id = _version(sample, sample.good.version).tags[ROLLBACK_TAGS + "change_record_run_id"]
    record = json.loads(read_artifact_text(sample.client, run_id, "change-record.json") or "{}")
    impact = record["impact_assessment"]
    assert impact["compared with"].startswith(f"version {sample.poor.version}")
    old, new = _eval_metrics(sample, sample.poor.version), _eval_metrics(sample, sample.good.version)
    assert impact["overall"]["concordance"]["difference"] == pytest.approx(
        new["eval.concordance"] - old["eval.concordance"]
    )
    assert impact["overall"]["concordance"]["difference"] > 0  # the good version is back


def test_a_rollback_leaves_the_restored_versions_promotion_records_as_they_were(sample) -> None:
    promoted = _promote_both_and_roll_back(sample)
    assert _records(sample, sample.good.version).change_record == promoted


def test_a_rollback_whose_change_record_cannot_be_written_is_refused_and_the_alias_stays(sample) -> None:
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    sample.client.delete_experiment(sample.client.get_experiment_by_name(COMPLIANCE_EXPERIMENT).experiment_id)
    with pytest.raises(PromotionRefused, match="cannot write the change record to MLflow"):
        rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    assert str(production_version(sample.client).version) == sample.poor.version
    assert ROLLBACK_TAGS + "record" not in _version(sample, sample.good.version).tags


def _rollback_runs(sample) -> list:
    experiment = sample.client.get_experiment_by_name(COMPLIANCE_EXPERIMENT)
    runs = sample.client.search_runs([experiment.experiment_id])
    return [r for r in runs if r.info.run_name.startswith("rollback-")]


def test_a_rollback_whose_alias_move_fails_leaves_a_failed_run_that_reads_as_no_record(
    sample, monkeypatch, tmp_path
) -> None:
    """The version's tags are set before the alias moves; if the move then fails, the tag names a
    run marked FAILED, which neither the export nor anyone following the tag reads as a rollback."""
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)

    def refuse(*args, **kwargs):
        raise MlflowException("the registry is read-only")

    monkeypatch.setattr(sample.client, "set_registered_model_alias", refuse)
    with pytest.raises(MlflowException, match="read-only"):
        rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    (run,) = _rollback_runs(sample)
    assert run.info.status == RunStatus.to_string(RunStatus.FAILED)
    assert str(production_version(sample.client).version) == sample.poor.version
    written = export_records(sample.client, [_version(sample, sample.good.version)], tmp_path)
    assert not any("rollback" in p.name for p in written)


def test_a_rollback_record_that_cannot_be_written_leaves_no_running_run(sample, monkeypatch) -> None:
    """An artifact store that fails (OSError, not an MLflow error) refuses in one line, and the run
    begun for the record is marked FAILED rather than left RUNNING."""
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sample.client, "log_text", disk_full)
    with pytest.raises(PromotionRefused, match=r"cannot write the change record .*No space left"):
        rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    (run,) = _rollback_runs(sample)
    assert run.info.status == RunStatus.to_string(RunStatus.FAILED)
    assert str(production_version(sample.client).version) == sample.poor.version


def test_a_rollback_away_from_a_version_whose_runs_are_gone_says_so_instead_of_none(
    sample, monkeypatch
) -> None:
    """Without the removed version's evidence the record must not read as a first promotion: every
    item's previous value says the run is gone and whether it changed is unknown (null)."""
    _promote(sample, sample.good.version)
    _promote(sample, sample.poor.version)
    real = promotion_records.version_evidence

    def without_poor(client, mv, uri):
        return None if str(mv.version) == sample.poor.version else real(client, mv, uri)

    monkeypatch.setattr(promotion_records, "version_evidence", without_poor)
    rollback(sample.client, sample.sessions, sample.settings, OFFICER)
    run_id = _version(sample, sample.good.version).tags[ROLLBACK_RECORD_RUN_TAG]
    record = json.loads(read_artifact_text(sample.client, run_id, "change-record.json") or "{}")
    gone = f"version {sample.poor.version}, whose pipeline run is no longer in the tracking store"
    changes = record["description_of_modification"]["changes"]
    assert all(c["previous"] == gone and c["changed"] is None for c in changes)
    assert record["description_of_modification"]["previous_version"] == sample.poor.version
    assert record["impact_assessment"]["compared with"] == gone
