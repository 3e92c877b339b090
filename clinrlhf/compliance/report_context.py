"""The compliance report's content, built from MLflow (and the audit trail for approvals), so that
a report rendered today shows today's approvals and promotions for a run trained last month."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.compliance import plots
from clinrlhf.compliance.approval import (
    ACTOR_TAG,
    NAME_TAG,
    OVERRIDE_TAG,
    RECORD_TAG,
    TIME_TAG,
    find_approval,
)
from clinrlhf.compliance.criteria import AcceptanceCriteria, check_criteria
from clinrlhf.compliance.evalmetrics import Rates
from clinrlhf.compliance.evidence import Evidence, when
from clinrlhf.compliance.governance import custom_criteria, describe_custom, record_sha256
from clinrlhf.compliance.hti1 import source_attributes
from clinrlhf.compliance.modelcard import model_card
from clinrlhf.compliance.privacy_spent import odometers
from clinrlhf.compliance.promotion import PROMOTION_TAGS
from clinrlhf.compliance.report_privacy import privacy_statement
from clinrlhf.compliance.report_records import promotion_records
from clinrlhf.compliance.wilson import wilson_interval
from clinrlhf.eval.unseen import UNSEEN
from clinrlhf.lineage.artifacts import read_artifact_text
from clinrlhf.lineage.audit_anchors import AUDIT_HEAD_TAG, parse_head
from clinrlhf.lineage.launcher import LAUNCHED_BY
from clinrlhf.lineage.runs import PPO_PROMPT_SOURCE
from clinrlhf.store import consistent_read
from clinrlhf.store.models import AuditEvent


def _short(sha: str) -> str:
    return sha[:12] if len(sha) == 64 else sha


SMALL_GROUP_N = 30  # below this (or for a zero-width bootstrap) a subgroup's interval is Wilson's


def interval(values: dict[str, float], metric: str) -> tuple[float, float, bool] | None:
    """(low, high, is_wilson): the eval run's 95% percentile bootstrap interval; for a small group,
    or one whose bootstrap collapsed to a point, the Wilson score interval instead."""
    low, high = values.get(f"{metric}_ci_low"), values.get(f"{metric}_ci_high")
    n, p = int(values.get("n", 0)), values.get(metric)
    if n > 0 and p is not None and p == p and (n < SMALL_GROUP_N or low == high):
        return (*wilson_interval(p, n), True)
    return (low, high, False) if low is not None and high is not None else None


def _ci(values: dict[str, float], metric: str) -> str:
    found = interval(values, metric)
    if found is None:
        return "–"
    low, high, wilson = found
    return f"{low:.3f}–{high:.3f}" + (" (Wilson)" if wilson else "")


def _pair(values: dict[str, float], metric: str) -> tuple[float | None, float | None]:
    found = interval(values, metric)
    return (found[0], found[1]) if found else (None, None)


def _outcome(rates: Rates) -> dict[str, Any]:
    o = rates.overall
    return {
        "concordance": o.get("concordance", float("nan")),
        "unsafe_rate": o.get("unsafe_rate", float("nan")),
        "n": int(o.get("n", 0)),
        "concordance_ci": _ci(o, "concordance"),
        "unsafe_ci": _ci(o, "unsafe_rate"),
    }


def _unseen(ev: Evidence) -> dict[str, float] | None:
    """The outcome on the test scenarios whose prompt no trainer read (eval.unseen_prompts.*, and
    eval.before.unseen_prompts.*); None for a run logged before the eval stage measured it."""
    run = ev.chain.stage("eval")
    metrics = run.data.metrics if run else {}
    after, before = f"eval.{UNSEEN}.", f"eval.before.{UNSEEN}."
    if f"{after}n" not in metrics:
        return None
    return {
        "n": metrics[f"{after}n"],
        "after_concordance": metrics.get(f"{after}concordance", float("nan")),
        "after_unsafe_rate": metrics.get(f"{after}unsafe_rate", float("nan")),
        "before_concordance": metrics.get(f"{before}concordance", float("nan")),
        "before_unsafe_rate": metrics.get(f"{before}unsafe_rate", float("nan")),
    }


def subgroup_rows(ev: Evidence) -> list[dict[str, Any]]:
    before = ev.rates["before"].subgroups
    rows = []
    for attribute, group, after in ev.rates["after"].groups():
        b = before.get(attribute, {}).get(group, {})
        rows.append(
            {
                "attribute": attribute,
                "group": group,
                "n": int(after.get("n", 0)),
                "before_concordance": b.get("concordance", float("nan")),
                "after_concordance": after.get("concordance", float("nan")),
                "after_concordance_ci": _ci(after, "concordance"),
                "before_unsafe": b.get("unsafe_rate", float("nan")),
                "after_unsafe": after.get("unsafe_rate", float("nan")),
                "after_unsafe_ci": _ci(after, "unsafe_rate"),
                "bounds": _pair(after, "concordance"),
                "before_bounds": _pair(b, "concordance"),
            }
        )
    return rows


def _bounds(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]] | None:
    if any(None in r[key] for r in rows):
        return None
    return [r[key] for r in rows]


def subgroup_plots(rows: list[dict[str, Any]]) -> list[str]:
    images = []
    for attribute in sorted({r["attribute"] for r in rows}):
        mine = [r for r in rows if r["attribute"] == attribute]
        images.append(
            plots.before_after_bars(
                [f"{attribute}={r['group']}" for r in mine],
                [r["before_concordance"] for r in mine],
                [r["after_concordance"] for r in mine],
                "concordance",
                before_ci=_bounds(mine, "before_bounds"),
                after_ci=_bounds(mine, "bounds"),
            )
        )
    return images


def lineage_graph(ev: Evidence) -> str:
    sha = {s: _short(ev.tag(s, "clinrlhf.dataset_sha256")) for s in ("sft", "reward")}
    model = ", ".join(f"v{v.version}" for v in ev.versions) or "unregistered"
    nodes = {
        "deid": (
            f"de-identification config\n{_short(ev.tag('reward', 'clinrlhf.deid_config_sha256'))}",
            0,
            0.5,
        ),
        "practice": (f"historical practice\n{sha['sft']}", 1, 1),
        "snapshot": (f"feedback snapshot\n{sha['reward']}", 1, 0),
        "sft": (f"SFT run\n{ev.run_id_of('sft')[:12]}", 2, 1),
        "reward": (f"DP reward run\nε = {ev.epsilon:.2f}", 2, 0),
        "ppo": (f"PPO run\nKL = {ev.kl:.2f}", 3, 0.5),
        "model": (f"clinrlhf-policy\n{model}", 4, 0.5),
        "eval": (f"eval run\nconcordance {ev.rates['after'].get('concordance'):.3f}", 5, 0.5),
    }
    edges = [
        ("deid", "practice"),
        ("deid", "snapshot"),
        ("practice", "sft"),
        ("snapshot", "reward"),
        ("sft", "reward"),
        ("sft", "ppo"),
        ("reward", "ppo"),
        ("ppo", "model"),
        ("model", "eval"),
    ]
    return plots.lineage_graph(nodes, edges)


def lineage_rows(ev: Evidence) -> list[dict[str, str]]:
    rows = []
    for stage in ("sft", "reward", "ppo", "eval"):
        run = ev.run(stage)
        if run is not None:
            dataset = run.data.tags.get("clinrlhf.dataset_sha256", "held-out synthetic cohort")
            rows.append(
                {
                    "stage": stage,
                    "run_id": run.info.run_id,
                    "dataset": dataset,
                    "started": when(run.info.start_time),
                }
            )
    return rows


def _approval_row(ev: Evidence, mv: ModelVersion, confirmed: bool | None) -> dict[str, str]:
    audit = {True: "confirmed", False: "NOT in the audit trail", None: "not checked"}[confirmed]
    return {
        "version": str(mv.version),
        "approved_by": mv.tags.get(ACTOR_TAG, "not approved"),
        "approver_name": mv.tags.get(NAME_TAG, ""),
        "override": mv.tags.get(OVERRIDE_TAG, ""),
        "approved_at": mv.tags.get(TIME_TAG, "–"),
        "audit": audit if ACTOR_TAG in mv.tags else "–",
        "production": "yes" if ev.production and str(ev.production.version) == str(mv.version) else "no",
    }


def approval_rows(
    client: MlflowClient, ev: Evidence, sessions: sessionmaker[Session] | None
) -> list[dict[str, str]]:
    """Each registered version of the run: who approved it, whether the audit trail confirms it,
    and whether it is in production."""
    if sessions is None:
        return [_approval_row(ev, mv, None) for mv in ev.versions]
    with consistent_read(sessions) as session:
        return [
            _approval_row(ev, mv, find_approval(client, session, mv.version) is not None)
            for mv in ev.versions
        ]


GOVERNANCE_RECORD_TAGS = {"approve": RECORD_TAG, "promote": PROMOTION_TAGS + "record"}


def _records(ev: Evidence) -> list[tuple[str, dict[str, Any]]]:
    """(version, governance record) of each version's approval and latest promotion, from MLflow."""
    found = []
    for mv in ev.versions:
        for tag in GOVERNANCE_RECORD_TAGS.values():
            raw = mv.tags.get(tag)
            try:
                record = json.loads(raw) if raw else None
            except ValueError:
                record = None
            if isinstance(record, dict):
                found.append((str(mv.version), record))
    return found


def governance_notes(
    ev: Evidence, criteria: AcceptanceCriteria, sessions: sessionmaker[Session] | None
) -> list[str]:
    """Custom criteria and overrides used to approve or promote the run's versions, each marked
    with whether the audit trail pins that record; and this report's own custom criteria."""
    notes = []
    records = _records(ev)
    pinned: set[str] = set()
    if sessions is not None and records:
        digests = [record_sha256(r) for _, r in records]
        with consistent_read(sessions) as session:
            pinned = set(
                session.scalars(select(AuditEvent.entity_sha256).where(AuditEvent.entity_sha256.in_(digests)))
            )
    for version, r in records:
        who = f"{r.get('name', '?')} ({r.get('role', '?')}) at {r.get('time', '?')}"
        trail = (
            ""
            if sessions is None
            else " [pinned in the audit trail]"
            if record_sha256(r) in pinned
            else " [NOT in the audit trail]"
        )
        if r.get("custom_criteria"):
            notes.append(
                f"custom criteria used by {who} to {r.get('action')} version {version}: "
                f"{describe_custom(r['custom_criteria'])}{trail}"
            )
        if r.get("override_reason"):
            notes.append(
                f"override by {who} to {r.get('action')} version {version} although it failed "
                f"{r.get('failed', '?')}: “{r['override_reason']}”{trail}"
            )
    if custom_criteria(criteria):
        notes.append(f"this report checks custom criteria: {describe_custom(custom_criteria(criteria))}")
    return notes


def _feedback_table(ev: Evidence) -> dict[str, Any]:
    fb, panel = ev.feedback, ev.facts.get("feedback", {})
    table: dict[str, Any] = dict(panel)
    if fb:
        table |= {
            "judgments in snapshot": fb["judgments"],
            "by kind": ", ".join(f"{k} {v}" for k, v in fb["by_kind"].items()),
            "clinicians in the training snapshot (quarantined left out)": fb["clinicians"],
            "judgments per clinician (min / median / max)": "{min} / {median} / {max}".format(
                **fb["per_clinician"]
            ),
            "cards judged": fb["cards"],
            "CDS suggestions accepted": f"{fb['cds_accept_rate']:.1%}"
            if fb["cds_accept_rate"] == fb["cds_accept_rate"]
            else "–",
            "pairwise items judged by ≥ 2 clinicians": fb["agreement_items"],
            "observed agreement": f"{fb['agreement_observed']:.3f}",
            "Fleiss' κ, all case types pooled (first / second / tie)": f"{fb['agreement_kappa']:.3f}",
        }
    return table


QUALITY_ARTIFACT = "feedback/quality.json"  # logged by the pipeline (clinrlhf.feedback.screening)
AUDITED_ATTRIBUTES = ("race", "ethnicity")  # shown apart: the fairness audit the report must carry


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return fmt.format(value) if isinstance(value, int | float) else "–"


def _interval(low: float | None, high: float | None) -> str:
    return f"{low:.2f}–{high:.2f}" if isinstance(low, int | float) and isinstance(high, int | float) else "–"


def quality_rows(quality: dict[str, Any]) -> dict[str, Any]:
    """The reliability and agreement tables of a pipeline's feedback/quality.json, formatted."""
    raters = [
        {
            "clinician": r["clinician"],
            "labels": r["labels"],
            "accuracy": _num(r["accuracy"]),
            "robust_z": _num(r["robust_z"], "{:.1f}"),
            "kappa": _num(r.get("kappa_vs_others")),
            "kappa_ci": _interval(r.get("kappa_low"), r.get("kappa_high")),
            "items": r.get("agreement_items", 0),
            "unsafe": f"{r['unsafe_choices']} / {r['safety_items']}" if r.get("safety_items") else "–",
            "status": "no data"
            if r.get("no_data")
            else "quarantined"
            if r["quarantined"]
            else ("flagged" if r["flagged"] else "ok"),
            "why": "; ".join(r["flagged"]),
        }
        for r in quality.get("raters", [])
    ]
    cases = [
        {
            "case": case,
            "items": int(v.get("items") or 0),
            "kappa": _num(v.get("estimate")),
            "kappa_ci": _interval(v.get("low"), v.get("high")),
        }
        for case, v in sorted(quality.get("case_types", {}).items())
    ]
    return {
        "raters": raters,
        "cases": cases,
        "method": quality.get("reliability", {}).get("method", "?"),
        "safety_checked": quality.get("safety_check") is not None,
        "quarantined": quality.get("quarantined", []),
        "excluded": quality.get("excluded_judgments", 0),
        "n_quarantined": len(quality.get("quarantined", [])) or int(quality.get("clinicians_quarantined", 0)),
        "sources": ", ".join(f"{k} ({v})" for k, v in quality.get("sources", {}).items()),
        # clinrlhf.feedback.screening_release: why rows are missing, and the counts published instead
        "withheld": quality.get("withheld"),
        "counts": ", ".join(
            f"{k.replace('_', ' ')} {quality[k]}"
            for k in ("clinicians_screened", "clinicians_flagged", "clinicians_quarantined")
            if k in quality
        ),
    }


def feedback_quality(client: MlflowClient, ev: Evidence) -> dict[str, Any] | None:
    """The pipeline's feedback-quality tables, or None for runs that did not log them."""
    text = read_artifact_text(client, ev.run_id, QUALITY_ARTIFACT)
    return quality_rows(json.loads(text)) if text is not None else None


def clinician_counts(ev: Evidence, quality: dict[str, Any] | None) -> str | None:
    """One sentence reconciling the clinician counts the tables show: the panel (every table keyed
    by clinician lists it), who was quarantined, and who remains in the training snapshot."""
    panel = ev.facts.get("feedback", {}).get("clinicians on the panel")
    trained = ev.feedback.get("clinicians") if ev.feedback else None
    if panel is None or trained is None:
        return None
    held = quality["n_quarantined"] if quality else 0
    idle = int(panel) - int(trained) - held
    rest = f", {idle} with no judgments in it" if idle > 0 else ""
    return (
        f"Clinicians: {panel} on the panel (the rows of the reliability tables below); {held} quarantined, "
        f"so {trained} in the training snapshot{rest}."
    )


def fairness_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The subgroup rows of the race and ethnicity audit (empty if the eval run logged none)."""
    return [r for r in rows if r["attribute"] in AUDITED_ATTRIBUTES]


def policy_privacy(prompt_source: str) -> str:
    """Whether the reward model's guarantee reaches the aligned policy: it does only when PPO's
    prompts were not the feedback's own (clinrlhf.pipeline.prompts)."""
    if prompt_source == "history":
        return (
            "PPO was run on historical-practice prompts, so the feedback reached the aligned policy only "
            "through this model: the policy carries the same guarantee."
        )
    return (
        "PPO was run on the feedback snapshot's prompts, read in the clear: the aligned policy carries "
        "this guarantee for what the clinicians chose, not for which de-identified patient descriptions "
        "the snapshot holds."
    )


def _privacy(client: MlflowClient, ev: Evidence) -> dict[str, Any]:
    policy = policy_privacy(ev.tag("ppo", PPO_PROMPT_SOURCE, "feedback"))
    return privacy_statement(client, ev, policy) | {
        "params": ev.dp_params | {"dp.epsilon": f"{ev.epsilon:.3f}"},
        "ledger": [asdict(e) for e in ev.spent_runs],
        "odometers": [asdict(o) for o in odometers(ev.spent_runs)],  # composed by the filter, never summed
    }


def launched_by(ev: Evidence) -> str:
    """The launcher's display name as the run recorded it, else MLflow's OS user, unverified."""
    tags = ev.chain.pipeline.data.tags
    return tags.get(LAUNCHED_BY) or f"unverified: {tags.get('mlflow.user', '?')}"


def _audit_head(ev: Evidence) -> dict[str, Any] | None:
    """The audit trail's head this run recorded: an anchor outside the database that
    `clinrlhf audit verify` checks, printed here so the signed report carries it too."""
    head = parse_head(ev.tag("pipeline", AUDIT_HEAD_TAG, ""))
    return None if head is None else {"seq": head.seq, "hash": head.hash}


def report_context(
    client: MlflowClient,
    ev: Evidence,
    criteria: AcceptanceCriteria,
    sessions: sessionmaker[Session] | None = None,
) -> dict[str, Any]:
    rows = subgroup_rows(ev)
    quality = feedback_quality(client, ev)
    history = {k: v for k, v in ev.history.items() if k.startswith("ppo.")}
    return {
        "run_id": ev.run_id,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "world": ev.facts.get("world", "not recorded"),
        "launched_by": launched_by(ev),
        "started": when(ev.chain.pipeline.info.start_time),
        "tracking_uri": ev.tracking_uri,
        "git_commit": ev.tag("pipeline", "mlflow.source.git.commit"),
        "environment_sha256": ev.environment_sha256,
        "before": _outcome(ev.rates["before"]),
        "after": _outcome(ev.rates["after"]),
        "unseen": _unseen(ev),
        "model_card": model_card(ev),
        "hti1": source_attributes(ev),
        **promotion_records(client, ev),  # change records and CHAI cards of promoted versions
        "criteria": check_criteria(criteria, ev.rates["after"], ev.epsilon),
        "criteria_config": criteria.to_dict(),
        "governance_notes": governance_notes(ev, criteria, sessions),
        "approvals": approval_rows(client, ev, sessions),
        "audit_head": _audit_head(ev),
        "privacy": _privacy(client, ev),
        "deid_config_sha256": ev.tag("reward", "clinrlhf.deid_config_sha256"),
        "deid_counts": sorted(ev.facts.get("deid_counts", {}).items()),
        "feedback": _feedback_table(ev),
        "flip_rates": sorted(ev.flip_rates.items()),
        "quality": quality,
        "clinician_counts": clinician_counts(ev, quality),
        "pooled_kappa": f"κ = {ev.feedback['agreement_kappa']:.3f}" if ev.feedback else None,
        "fairness": fairness_rows(rows),
        "curves": [
            plots.curves(history, "PPO", target=ev.kl_target if ev.kl_target == ev.kl_target else None)
        ]
        if history
        else [],
        "subgroups": rows,
        "subgroup_plots": subgroup_plots(rows),
        "lineage_graph": lineage_graph(ev),
        "lineage": lineage_rows(ev),
    }
