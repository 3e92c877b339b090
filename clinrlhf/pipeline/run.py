"""Run the whole loop once: the body of `clinrlhf quickstart` and `clinrlhf pipeline`."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import mlflow
import torch

from clinrlhf.feedback import Judgment
from clinrlhf.identity.tokens import mint_token
from clinrlhf.lineage import plots
from clinrlhf.lineage.report import write_report
from clinrlhf.lineage.runs import configure_mlflow, git_commit, stage_run
from clinrlhf.panel.clinicians import default_panel
from clinrlhf.panel.session import PanelRun, PanelStats
from clinrlhf.pipeline import stages
from clinrlhf.pipeline.cohorts import Cohorts, make_cohorts, practice_examples, scenarios
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.server import running_server
from clinrlhf.pipeline.summary import criteria, deid_counts, subgroup_plots, subgroup_rows
from clinrlhf.policy.registry import set_latest_aligned
from clinrlhf.settings import Settings
from clinrlhf.store.db import open_store
from clinrlhf.store.snapshot import export_judgments
from clinrlhf.world.world import World, load_world
from privacy.deid import config_sha256, deidentify_bundle

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
    panel = default_panel()
    tokens = {c.id: mint_token(settings, role="clinician", sub=c.id) for c in panel}
    tokens["cds-client"] = mint_token(settings, role="cds-client", sub="simulated-ehr")
    log = settings.resolved_home / "logs" / "server.log"
    with running_server(settings.resolved_home, policy_dir, log=log) as base_url:
        run = PanelRun(base_url, world, panel, tokens, config.panel)
        return run.run(cohorts.feedback, reporter.callback("feedback via HTTP API"))


def load_judgments(settings: Settings) -> list[Judgment]:
    with open_store(settings.resolved_database_url)() as session:
        return export_judgments(session)


def _deid_batch_counts(settings: Settings, cohorts: Cohorts, today: date) -> Counter[str]:
    counts: Counter[str] = Counter()
    for patient in cohorts.feedback:
        counts.update(deidentify_bundle(patient.bundle, key=settings.deid_secret, today=today).counts)
    return counts


def run_pipeline(settings: Settings, config: PipelineConfig, reporter: Reporter) -> dict[str, Any]:
    # One intra-op thread: the API server runs beside the trainers on the same cores, and for models
    # this small, thread hand-offs cost more than they parallelise (PPO measured 4.7x faster).
    torch.set_num_threads(1)
    started, today, world = time.monotonic(), date.today(), load_world()
    home, deid_sha = settings.resolved_home, config_sha256()
    tracking_uri = configure_mlflow(settings)
    with stage_run("pipeline", nested=False) as parent:
        mlflow.log_params({"pipeline.config": json.dumps(asdict(config), default=str)[:6000]})
        out = home / "runs" / parent.info.run_id
        cohorts = make_cohorts(
            world,
            (config.history_patients, config.feedback_patients, config.heldout_patients),
            config.seed,
            today,
        )
        examples = practice_examples(world, cohorts.history, settings.deid_secret, today, config.seed)
        sft_model, tokenizer, sft_run = stages.sft_stage(
            world,
            examples,
            config.policy,
            config.sft,
            out / "sft",
            deid_sha,
            reporter.callback("supervised policy"),
        )
        panel_stats = collect_feedback(settings, world, cohorts, out / "sft", config, reporter)
        judgments = load_judgments(settings)
        snapshot = stages.save_snapshot(judgments, home / "snapshots")
        reward, pairs, reward_run = stages.reward_stage(
            world,
            judgments,
            sft_model,
            tokenizer,
            config.reward,
            snapshot,
            deid_sha,
            reporter.callback("DP reward model"),
        )
        prompts = sorted({j.prompt for j in judgments})
        ppo, ppo_run = stages.ppo_stage(
            world,
            sft_model,
            tokenizer,
            reward.model,
            prompts,
            config.ppo,
            reward_run,
            deid_sha,
            out / "policy",
            reporter.callback("KL-constrained PPO"),
        )
        evals, eval_run = stages.eval_stage(
            world,
            {"before": sft_model, "after": ppo.policy},
            tokenizer,
            scenarios(cohorts.heldout),
            ppo_run.run_id,
        )
        set_latest_aligned(home, out / "policy")
        context = {
            "run_id": parent.info.run_id,
            "world": f"{world.name} {world.version}",
            "before": evals["before"],
            "after": evals["after"],
            "git_commit": git_commit(),
            "tracking_uri": tracking_uri,
            "deid_config_sha256": deid_sha,
            "deid_counts": deid_counts(_deid_batch_counts(settings, cohorts, today)),
            "criteria": criteria(
                evals["before"],
                evals["after"],
                reward.epsilon,
                reward.delta,
                len(pairs),
                ppo.final_kl,
                config.ppo.kl_target,
            ),
            "privacy": {
                "statement": g.describe()
                if (g := reward.guarantee)
                else "Trained WITHOUT differential privacy.",
                "params": reward.params | {"dp.epsilon": f"{reward.epsilon:.3f}"},
            },
            "feedback": {
                "cards judged": panel_stats.cards,
                "CDS feedback entries": panel_stats.feedback,
                "reviews": panel_stats.reviews,
                "clinicians": len(default_panel()),
                "judgments in snapshot": len(judgments),
                "preference pairs": len(pairs),
                "HTTP errors": len(panel_stats.errors),
                "snapshot SHA-256": snapshot[0],
            },
            "curves": [
                plots.curves(
                    {k: [h[k] for h in ppo.history if k in h] for k in ("ppo.reward_mean", "ppo.kl")},
                    "PPO",
                    target=config.ppo.kl_target,
                )
            ],
            "subgroups": (rows := subgroup_rows(evals["before"], evals["after"])),
            "subgroup_plots": subgroup_plots(rows),
            "lineage": [
                {"stage": "sft", "run_id": sft_run.run_id, "dataset": sft_run.dataset_sha256},
                {"stage": "reward", "run_id": reward_run.run_id, "dataset": reward_run.dataset_sha256},
                {"stage": "ppo", "run_id": ppo_run.run_id, "dataset": ppo_run.dataset_sha256},
                {"stage": "eval", "run_id": eval_run, "dataset": "held-out synthetic cohort"},
            ],
        }
        report = write_report(context, home / "reports" / f"{parent.info.run_id}.html")
        mlflow.log_artifact(str(report), artifact_path="report")
        seconds = time.monotonic() - started
        summary = {
            "before": {
                "concordance": evals["before"].concordance,
                "unsafe_rate": evals["before"].unsafe_rate,
            },
            "after": {"concordance": evals["after"].concordance, "unsafe_rate": evals["after"].unsafe_rate},
            "kl": ppo.final_kl,
            "kl_target": config.ppo.kl_target,
            "epsilon": reward.epsilon,
            "delta": reward.delta,
            "preference_pairs": len(pairs),
            "mlflow_run_id": parent.info.run_id,
            "mlflow_tracking_uri": tracking_uri,
            "policy_dir": str(out / "policy"),
            "report": str(report),
            "seconds": seconds,
        }
        mlflow.log_metrics(
            {
                "pipeline.seconds": seconds,
                "pipeline.concordance_gain": summary["after"]["concordance"]
                - summary["before"]["concordance"],
            }
        )
    return summary
