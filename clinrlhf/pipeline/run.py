"""Run the whole loop once: the body of `clinrlhf quickstart` and `clinrlhf pipeline`."""

from __future__ import annotations

import time
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import mlflow
import torch
from mlflow import MlflowClient
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.compliance.pdf import PdfUnavailableError
from clinrlhf.compliance.registry import register_policy
from clinrlhf.compliance.report import ReportFiles, report_for_run
from clinrlhf.eval.unseen import unseen_rates
from clinrlhf.feedback import Judgment
from clinrlhf.feedback.anonymity import suppress_rare_patients
from clinrlhf.feedback.judgment import from_ndjson
from clinrlhf.feedback.screening_release import released_quality
from clinrlhf.formulary import load_formulary
from clinrlhf.identity.tokens import mint_token
from clinrlhf.lineage.audit_anchors import anchor_audit_head
from clinrlhf.lineage.environment import log_environment
from clinrlhf.lineage.facts import log_report_facts
from clinrlhf.lineage.headline import log_headline
from clinrlhf.lineage.launcher import launcher_tags
from clinrlhf.lineage.runs import configure_mlflow, stage_run
from clinrlhf.panel.clinicians import panel_of
from clinrlhf.panel.session import PanelRun, PanelStats
from clinrlhf.pipeline import stages
from clinrlhf.pipeline.cohorts import Cohorts, make_cohorts, practice_examples, scenarios
from clinrlhf.pipeline.config import PipelineConfig, with_stage_seeds
from clinrlhf.pipeline.logged import log_pipeline_config
from clinrlhf.pipeline.prompts import balance_by_age_band, ppo_prompts
from clinrlhf.pipeline.screening import screen_snapshot
from clinrlhf.pipeline.server import running_server
from clinrlhf.pipeline.summary import with_home_relative
from clinrlhf.policy.pointers import set_latest_aligned
from clinrlhf.reward.ledger import deployment_ledger
from clinrlhf.reward.raters import with_rater_accuracies
from clinrlhf.rlaif import rubric
from clinrlhf.settings import Settings
from clinrlhf.store.db import deployment_store, transaction
from clinrlhf.store.export import export_snapshot
from clinrlhf.store.quarantine import REASONS_FILE
from clinrlhf.text.prompt import render_prompt
from clinrlhf.world.world import World, load_world
from privacy.deid import DeidReport, config_sha256, default_rules, deidentify_with_report

Reporter = Any  # a clinrlhf.cli.progress.StageProgress; kept loose to keep the CLI out of this module


def collect_feedback(
    settings: Settings,
    world: World,
    cohorts: Cohorts,
    policy_dir: Path,
    config: PipelineConfig,
    reporter: Reporter,
) -> PanelStats:
    """Serve the current policy on 127.0.0.1 and let the panel judge its suggestions over HTTP."""
    panel = panel_of(config.panel.clinicians, config.panel.adversaries, config.panel.adversary_kind)
    tokens = {c.id: mint_token(settings, role="clinician", sub=c.id) for c in panel}
    tokens["cds-client"] = mint_token(settings, role="cds-client", sub="simulated-ehr")
    log = settings.resolved_home / "logs" / "server.log"
    with running_server(settings.resolved_home, policy_dir, log=log) as base_url:
        run = PanelRun(base_url, world, panel, tokens, config.panel)
        return run.run(cohorts.feedback, reporter.callback("feedback via HTTP API"))


def load_judgments(store: sessionmaker[Session], world: World) -> list[Judgment]:
    """The de-identified snapshot the reward model trains on; the export is an audit event."""
    with transaction(store) as session:
        snapshot = export_snapshot(session, actor="clinrlhf-pipeline", world=world)
    return from_ndjson(snapshot.ndjson)


def _deid_batch_report(settings: Settings, cohorts: Cohorts, today: date) -> DeidReport:
    """The de-identification report of the batch the service saw: counts only, never values."""
    rules = default_rules()
    report = DeidReport(rules.name, rules.version, rules.sha256)
    for patient in cohorts.feedback:
        report.merge(deidentify_with_report(patient.bundle, key=settings.deid_secret, today=today)[1])
    return report


def _write_report(
    client: MlflowClient, store: sessionmaker[Session], folder: Path, run_id: str, tracking_uri: str
) -> ReportFiles:
    """HTML and PDF from what MLflow and the audit trail hold (HTML alone where Pango is missing),
    kept as artifacts of the run they describe."""
    try:
        files = report_for_run(client, run_id, tracking_uri, folder, sessions=store, pdf=True)
    except PdfUnavailableError:
        files = report_for_run(client, run_id, tracking_uri, folder, sessions=store)
    for written in (files.pdf, files.html):
        if written:
            mlflow.log_artifact(str(written), artifact_path="report")
    return files


def roster(config: PipelineConfig) -> list[str]:
    """The clinicians enrolled before any feedback: the pseudonyms per-clinician tables are keyed by,
    so that which of them appear never depends on who judged (clinrlhf.reward.rater_release)."""
    return [
        c.id for c in panel_of(config.panel.clinicians, config.panel.adversaries, config.panel.adversary_kind)
    ]


def screened_judgments(
    store: sessionmaker[Session], world: World, home: Path, config: PipelineConfig
) -> list[Judgment]:
    """The store's de-identified snapshot, screened (`screen_judgments`)."""
    return screen_judgments(store, load_judgments(store, world), world, home, config)


def screen_judgments(
    store: sessionmaker[Session],
    snapshot: list[Judgment],
    world: World,
    home: Path,
    config: PipelineConfig,
) -> list[Judgment]:
    """The snapshot the reward model may train on, screened twice. Outlier raters are quarantined
    (audit events) and every quarantined clinician's judgments left out until a person releases them
    (`clinrlhf quarantine`), one source only; then patients whose (age band, sex) few others share
    are left out (the rule file's minK). Both reports go to MLflow, the screening's as far as the
    privacy unit lets per-clinician rows out (clinrlhf.feedback.screening_release). Both steps read
    the judgments in the clear: the reward model's guarantee is conditional on their outcome."""
    screened, quality = screen_snapshot(
        store,
        snapshot,
        actor="clinrlhf-pipeline",
        reasons=home / REASONS_FILE,
        config=config.screening,
        grade=partial(rubric.grade, world),  # the guideline, for its check of safety-critical choices
    )
    mlflow.log_dict(
        released_quality(quality, config.reward.privacy_unit, roster(config)), "feedback/quality.json"
    )
    mlflow.set_tag("clinrlhf.feedback_source", ",".join(quality["sources"]))
    min_k = int(default_rules().parameters.get("kAnonymity", {}).get("minK", 1))
    judgments, k_anonymity = suppress_rare_patients(screened, min_k)
    mlflow.log_dict(k_anonymity, "deid/k_anonymity.json")
    return judgments


def _feedback_facts(
    stats: PanelStats, config: PipelineConfig, judgments: list[Judgment], pairs: list[Any]
) -> dict[str, int]:
    """What the report says of the feedback: counts only."""
    return {
        "cards judged": stats.cards,
        "CDS feedback entries": stats.feedback,
        "reviews": stats.reviews,
        "clinicians on the panel": config.panel.clinicians,
        "judgments in snapshot": len(judgments),
        "preference pairs": len(pairs),
        "HTTP errors": len(stats.errors),
    }


def training_prompts(examples: list[tuple[str, str]], ppo: list[str]) -> set[str]:
    """Every prompt a trainer read: the supervised corpus's and PPO's (the reward model reads the
    feedback's, which PPO's default source already holds; with history prompts, the SFT corpus's)."""
    return {prompt for prompt, _ in examples} | set(ppo)


def _eval_summary(evals: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        name: {"concordance": evals[name].concordance, "unsafe_rate": evals[name].unsafe_rate}
        for name in ("before", "after")
    }


def run_pipeline(settings: Settings, config: PipelineConfig, reporter: Reporter) -> dict[str, Any]:
    # One intra-op thread: the API server runs beside the trainers on the same cores, and for models
    # this small, thread hand-offs cost more than they parallelise (PPO measured 4.7x faster).
    torch.set_num_threads(1)
    started, today, world = time.monotonic(), date.today(), load_world()
    config = with_stage_seeds(config)  # one knob: stage seeds not set alone follow config.seed
    home, deid_sha = settings.resolved_home, config_sha256()
    # What the reward stage's charge would refuse (another δ, a spent odometer), refused before SFT.
    deployment_ledger(settings, config.reward.dp.accountant).preflight(config.reward.privacy_unit)
    tracking_uri = configure_mlflow(settings)
    with stage_run("pipeline", nested=False, tags=launcher_tags(settings)) as parent:
        log_pipeline_config(config)  # whole, as an artifact: read back by load_logged_config
        log_environment()
        out = home / "runs" / parent.info.run_id
        cohorts = make_cohorts(world, config.cohort_sizes(), config.seed, today)
        examples = practice_examples(world, cohorts.history, settings.deid_secret, today, config.seed)
        sft_model, tokenizer, sft_run = stages.sft_stage(
            world=world,
            examples=examples,
            policy_config=config.policy,
            config=config.sft,
            out=out / "sft",
            deid_sha=deid_sha,
            progress=reporter.callback("supervised policy"),
        )
        panel_stats = collect_feedback(settings, world, cohorts, out / "sft", config, reporter)
        # One store for the rest of the run: each open runs the schema migrations again.
        store = deployment_store(settings)
        judgments = screened_judgments(store, world, home, config)
        snapshot = stages.save_snapshot(judgments, home / "snapshots")
        reward, pairs, reward_run = stages.reward_stage(
            world=world,
            judgments=judgments,
            sft_model=sft_model,
            tokenizer=tokenizer,
            # Rater weights from the very judgments trained on: quarantined clinicians already out.
            config=with_rater_accuracies(config.reward, judgments),
            snapshot=snapshot,
            deid_sha=deid_sha,
            progress=reporter.callback("DP reward model"),
            ledger=deployment_ledger(settings, config.reward.dp.accountant),  # shared with `train`
            roster=roster(config),
            log_snapshot_file=config.log_snapshot_file,
        )
        stages.save_reward(reward, tokenizer, out / "reward", reward_run)
        ppo, ppo_run = stages.ppo_stage(
            world=world,
            sft_model=sft_model,
            tokenizer=tokenizer,
            reward=reward.model,
            prompts=(
                prompts := balance_by_age_band(
                    ppo_prompts(config.ppo_prompts, judgments, examples), config.ppo_prompt_balance
                )
            ),
            config=config.ppo,
            reward_run=reward_run,
            deid_sha=deid_sha,
            out=out / "policy",
            progress=reporter.callback("KL-constrained PPO"),
            lora=config.lora,
            prompt_source=config.ppo_prompts,
            formulary=load_formulary(config.formulary),
            invalid_penalty=config.validity_penalty,
        )
        evals, eval_run = stages.eval_stage(
            world=world,
            models={"before": sft_model, "after": ppo.policy},
            tokenizer=tokenizer,
            scenarios=(test := scenarios(cohorts.test)),  # reported once, never decided on
            policy_run=ppo_run.run_id,
            training_prompts=(seen := training_prompts(examples, prompts)),
        )
        # On the pipeline run itself: one row of MLflow's run table per retrain, and its description.
        log_headline(_eval_summary(evals), epsilon=reward.epsilon, delta=reward.delta, kl=ppo.final_kl)
        set_latest_aligned(home, out / "policy")
        client = MlflowClient()
        version = register_policy(client, parent.info.run_id, out / "policy")
        feedback = _feedback_facts(panel_stats, config, judgments, pairs)
        deid = _deid_batch_report(settings, cohorts, today)
        mlflow.log_dict(deid.to_dict(), "deid/report.json")
        log_report_facts(f"{world.name} {world.version}", deid.by_identifier, feedback)
        anchor_audit_head(store)  # before the report, which prints it
        files = _write_report(client, store, home / "reports", parent.info.run_id, tracking_uri)
        seconds = time.monotonic() - started
        summary: dict[str, Any] = {
            **_eval_summary(evals),
            "unseen_prompts": unseen_rates(
                [render_prompt(world, t.facts, t.target) for t in test], evals["after"].outcomes, seen
            ),
            "kl": ppo.final_kl,
            "kl_target": config.ppo.kl_target,
            "epsilon": reward.epsilon,
            "delta": reward.delta,
            "preference_pairs": len(pairs),
            "mlflow_run_id": parent.info.run_id,
            "mlflow_tracking_uri": tracking_uri,
            "policy_dir": str(out / "policy"),
            "report": str(files.html),
            "report_pdf": str(files.pdf) if files.pdf else None,
            "model_version": version.version,
            "seconds": seconds,
        }
        summary = with_home_relative(summary, home)  # so that a copy of the home still finds them
        mlflow.log_metrics(
            {
                "pipeline.seconds": seconds,
                "pipeline.concordance_gain": summary["after"]["concordance"]
                - summary["before"]["concordance"],
            }
        )
    return summary
