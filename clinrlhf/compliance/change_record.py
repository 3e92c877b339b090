"""The change record of one promotion or rollback, in the three parts of a Predetermined Change Control Plan: the
description of the modification, the modification protocol that produced it, and its impact
assessment. FDA, "Marketing Submission Recommendations for a Predetermined Change Control Plan for
Artificial Intelligence-Enabled Device Software Functions", final guidance, August 2025
(https://www.fda.gov/regulatory-information/search-fda-guidance-documents/marketing-submission-recommendations-predetermined-change-control-plan-artificial-intelligence).

Pure: it reads the Evidence of the version put in production and of the version it replaces (None
at the first promotion) and returns JSON-ready data; every value comes from what MLflow recorded. A
rollback is a change to what serves patients too, so it gets a record of the same shape: the restored
version against the one taken out (`rollback_record`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mlflow.entities.model_registry import ModelVersion

from clinrlhf.compliance.criteria import AcceptanceCriteria, check_criteria
from clinrlhf.compliance.evidence import Evidence, when
from clinrlhf.compliance.registry import DATASET_SHA256, POLICY_SHA256
from clinrlhf.lineage.datasets import SHA256_TAG, TEST_DATASET
from clinrlhf.lineage.pipeline_config import canonical_sha256

SCHEMA = "clinrlhf.change-record/1"
GUIDANCE = (
    "FDA, Marketing Submission Recommendations for a Predetermined Change Control Plan for Artificial "
    "Intelligence-Enabled Device Software Functions (final guidance, August 2025)"
)
NONE = "none"
NOT_RECORDED = "not recorded"
STAGES = ("sft", "reward", "ppo", "eval")
METRICS = ("concordance", "unsafe_rate")


@dataclass(frozen=True)
class VersionEvidence:
    """A registered version and the evidence of the pipeline run that made it."""

    version: ModelVersion
    evidence: Evidence


def _number(value: float | None) -> float | None:
    """JSON has no NaN: a metric the run did not log is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def config_sha256(ev: Evidence) -> str:
    """SHA-256 of the stage runs' parameters as MLflow recorded them (canonical JSON, by stage): the
    training configuration's digest, reproducible by anyone holding the store. It covers what the
    stages log as params; the whole PipelineConfig (cohort sizes, prompt source, ...) has its own
    digest beside it (Evidence.pipeline_config_sha256)."""
    return canonical_sha256({s: dict(r.data.params) for s in STAGES if (r := ev.run(s)) is not None})


def scenarios_sha256(ev: Evidence) -> str:
    """SHA-256 of the held-out scenarios the eval run read, as its dataset input recorded it."""
    run = ev.run("eval")
    for item in run.inputs.dataset_inputs if run is not None and run.inputs else []:
        tags = {t.key: t.value for t in item.tags}
        if item.dataset.name == TEST_DATASET and SHA256_TAG in tags:
            return tags[SHA256_TAG]
    return NOT_RECORDED


def identity(v: VersionEvidence) -> dict[str, str]:
    """What the version is, item by item: the description of the modification compares these."""
    ev, mv = v.evidence, v.version
    return {
        "model version": str(mv.version),
        "policy weights SHA-256": mv.tags.get(POLICY_SHA256, "not recorded"),
        "pipeline run": ev.run_id,
        "feedback snapshot SHA-256": ev.tag("reward", "clinrlhf.dataset_sha256", "not recorded"),
        "supervised dataset SHA-256": ev.tag("sft", "clinrlhf.dataset_sha256", "not recorded"),
        "PPO prompts dataset SHA-256": mv.tags.get(DATASET_SHA256) or "not recorded",
        "de-identification config SHA-256": ev.tag("reward", "clinrlhf.deid_config_sha256", "not recorded"),
        "training config SHA-256": config_sha256(ev),
        "pipeline config SHA-256": ev.pipeline_config_sha256,
        "code commit": ev.tag("pipeline", "mlflow.source.git.commit", "not recorded"),
        "environment SHA-256": ev.environment_sha256,
        "held-out scenarios SHA-256": scenarios_sha256(ev),
        "reward model ε": f"{ev.epsilon:.3f}" if math.isfinite(ev.epsilon) else "not DP",
    }


def _kind(ev: Evidence) -> str:
    """What the runs show: the stage runs of the pipeline that made the version. Not the policy's
    architecture (no stage run records it) nor its intended use (the model card's fixed statement)."""
    runs = ", ".join(f"{s} run {r.info.run_id}" for s in STAGES if (r := ev.run(s)) is not None)
    return (
        f"retraining by the clinrlhf pipeline (pipeline run {ev.run_id}: {runs or 'no stage runs recorded'})"
    )


def _gone(version: str) -> str:
    return f"version {version}, whose pipeline run is no longer in the tracking store"


def description(
    new: VersionEvidence, previous: VersionEvidence | None, previous_version: str | None
) -> dict[str, Any]:
    """Each identifying item of `new` beside the previous production version's. `previous_version`
    None: there was none (first promotion); given with `previous` None: there was one, but its
    pipeline run is gone, so whether an item changed is unknown (null), not "changed"."""
    mine = identity(new)
    theirs = identity(previous) if previous else None
    changes: list[dict[str, Any]]
    if theirs is None and previous_version is not None:
        gone = _gone(previous_version)
        changes = [{"item": i, "previous": gone, "new": v, "changed": None} for i, v in mine.items()]
    else:
        changes = [
            {
                "item": item,
                "previous": theirs[item] if theirs else NONE,
                "new": value,
                "changed": theirs is None or theirs[item] != value,
            }
            for item, value in mine.items()
        ]
    was = f"version {previous_version}" if previous_version else "no version (first promotion)"
    return {
        "summary": f"{new.version.name} version {new.version.version} replaces {was} in production.",
        "previous_version": previous_version or NONE,
        "kind": _kind(new.evidence),
        "changes": changes,
    }


def _cohorts(ev: Evidence) -> list[dict[str, Any]]:
    return [
        {"attribute": a, "group": g, "n": int(values.get("n", 0))}
        for a, g, values in ev.rates["after"].groups()
    ]


def data_protocol(ev: Evidence) -> dict[str, Any]:
    fb = ev.feedback
    feedback: dict[str, Any] = (
        {
            "judgments": fb["judgments"],
            "by kind": fb["by_kind"],
            "clinicians": fb["clinicians"],
            "cards": fb["cards"],
        }
        if fb
        else {"counts": "not available: the snapshot file is not readable here (MLflow holds its SHA-256)"}
    )
    return {
        "feedback snapshot SHA-256": ev.tag("reward", "clinrlhf.dataset_sha256", "not recorded"),
        "feedback": feedback,
        "supervised dataset SHA-256": ev.tag("sft", "clinrlhf.dataset_sha256", "not recorded"),
        "de-identification config SHA-256": ev.tag("reward", "clinrlhf.deid_config_sha256", "not recorded"),
        "held-out evaluation": {
            "eval run": ev.run_id_of("eval"),
            "scenarios": int(ev.rates["after"].get("n", 0) or 0),
            "cohorts": _cohorts(ev),
        },
    }


def training_protocol(ev: Evidence) -> dict[str, Any]:
    runs = [
        {"stage": s, "run": r.info.run_id, "started": when(r.info.start_time)}
        for s in STAGES
        if (r := ev.run(s))
    ]
    return {
        "training config SHA-256": config_sha256(ev),
        "pipeline config SHA-256": ev.pipeline_config_sha256,
        "stage runs": runs,
        "differential privacy": ev.dp_params | {"dp.epsilon": _number(ev.epsilon)},
        "final KL to the supervised policy": _number(ev.kl),
        "KL target": _number(ev.kl_target),
        "code commit": ev.tag("pipeline", "mlflow.source.git.commit", "not recorded"),
        "environment SHA-256": ev.environment_sha256,
    }


def acceptance(ev: Evidence, criteria: AcceptanceCriteria, decision: dict[str, Any]) -> dict[str, Any]:
    results = check_criteria(criteria, ev.rates["after"], ev.epsilon)
    return {
        "criteria": criteria.to_dict(),
        "custom criteria": decision.get("custom_criteria", {}),
        "results": [asdict(r) for r in results],
        "all passed": all(r.passed for r in results),
        "override reason": decision.get("override_reason"),
    }


def _figure(values: dict[str, float], metric: str) -> float | None:
    return _number(values.get(metric))


def _difference(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def _row(new: dict[str, float], old: dict[str, float] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"n": int(new.get("n", 0)), "previous n": int(old.get("n", 0)) if old else None}
    for metric in METRICS:
        mine, theirs = _figure(new, metric), _figure(old, metric) if old else None
        row[metric] = {
            "new": mine,
            "new 95% CI": [_number(new.get(f"{metric}_ci_low")), _number(new.get(f"{metric}_ci_high"))],
            "previous": theirs,
            "difference": _difference(mine, theirs),
        }
    return row


def _same_scenarios(new: Evidence, previous: Evidence) -> str:
    """Whether a difference below is the model's alone: only when both eval runs read one held-out set."""
    mine, theirs = scenarios_sha256(new), scenarios_sha256(previous)
    if NOT_RECORDED in (mine, theirs):
        return (
            "held-out scenarios not recorded for both runs: whether they tested the same patients is unknown"
        )
    if mine == theirs:
        return "on the same held-out scenarios"
    return "on other held-out scenarios: the differences mix the models' change with the patients' change"


def impact(
    new: VersionEvidence, previous: VersionEvidence | None, previous_version: str | None
) -> dict[str, Any]:
    """The new version's held-out results against the previous production version's, overall and
    per subgroup, side by side; differences are new − previous (null where the previous version's
    runs are gone)."""
    after = new.evidence.rates["after"]
    before = previous.evidence.rates["after"] if previous else None
    keys = {(a, g) for a, g, _ in after.groups()} | (
        {(a, g) for a, g, _ in before.groups()} if before else set()
    )
    subgroups = []
    for attribute, group in sorted(keys):
        mine = after.subgroups.get(attribute, {}).get(group, {})
        theirs = before.subgroups.get(attribute, {}).get(group) if before else None
        subgroups.append({"attribute": attribute, "group": group, **_row(mine, theirs)})
    if previous is not None:
        compared = (
            f"version {previous.version.version} (eval run {previous.evidence.run_id_of('eval')}), "
            + _same_scenarios(new.evidence, previous.evidence)
        )
    elif previous_version is not None:
        compared = _gone(previous_version)
    else:
        compared = "none: this is the first version promoted to production, so there is no previous version to compare with"
    return {
        "compared with": compared,
        "new eval run": new.evidence.run_id_of("eval"),
        "overall": _row(after.overall, before.overall if before else None),
        "subgroups": subgroups,
    }


def change_record(
    new: VersionEvidence,
    previous: VersionEvidence | None,
    previous_version: str | None,
    criteria: AcceptanceCriteria,
    decision: dict[str, Any],
) -> dict[str, Any]:
    """The record of a promotion. `previous_version`: the version in production before (None at the
    first promotion), `previous` its evidence (None also when its pipeline run is gone); `decision`
    is the promotion's governance record (officer, time, criteria, override)."""
    ev = new.evidence
    return {
        "schema": SCHEMA,
        "guidance": GUIDANCE,
        "change": "promotion",
        "model": new.version.name,
        "version": str(new.version.version),
        "previous_version": previous_version or NONE,
        "promoted": {k: decision.get(k) for k in ("name", "role", "actor", "time")},
        "description_of_modification": description(new, previous, previous_version),
        "modification_protocol": {
            "data": data_protocol(ev),
            "training": training_protocol(ev),
            "acceptance_criteria": acceptance(ev, criteria, decision),
        },
        "impact_assessment": impact(new, previous, previous_version),
    }


def rollback_record(
    restored: VersionEvidence, removed: VersionEvidence | None, removed_version: str, decision: dict[str, Any]
) -> dict[str, Any]:
    """The record of putting `restored` back in place of `removed_version` (`removed`: its evidence,
    None when its pipeline run is gone). Nothing is retrained and the restored version's criteria are
    not checked again: the record says so and points at its promotion's record."""
    ev = restored.evidence
    version = str(restored.version.version)
    what = description(restored, removed, removed_version)
    what["summary"] = (
        f"rollback: {restored.version.name} version {version}, promoted before, is put back in production "
        f"in place of version {removed_version}; nothing is retrained, the registered weights are the same."
    )
    what["kind"] = f"rollback to the weights made by the clinrlhf pipeline (pipeline run {ev.run_id})"
    return {
        "schema": SCHEMA,
        "guidance": GUIDANCE,
        "change": "rollback",
        "model": restored.version.name,
        "version": version,
        "previous_version": removed_version,
        "rolled_back": {k: decision.get(k) for k in ("name", "role", "actor", "time")},
        "description_of_modification": what,
        "modification_protocol": {
            "data": data_protocol(ev),
            "training": training_protocol(ev),
            "acceptance_criteria": {
                "re-checked": False,
                "why": f"version {version} passed its acceptance criteria and was approved when it was "
                "promoted; that promotion's change record holds the criteria and their results",
            },
        },
        "impact_assessment": impact(restored, removed, removed_version),
    }


def record_sha256(record: dict[str, Any]) -> str:
    return canonical_sha256(record)
