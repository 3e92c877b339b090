"""One stage at a time, from files: the body of `clinrlhf train sft|reward|ppo`.

The pipeline passes models in memory; here each stage reads what the previous one wrote (a policy
folder, a reward folder, a de-identified snapshot) and runs the very same stage function, so a
stage trained alone is logged and tagged exactly as in the pipeline.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import torch

from clinrlhf.feedback import Judgment
from clinrlhf.feedback.judgment import from_ndjson
from clinrlhf.lineage.runs import configure_mlflow
from clinrlhf.pipeline import stages
from clinrlhf.pipeline.cohorts import make_cohorts, practice_examples
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.prompts import ppo_prompts
from clinrlhf.pipeline.run import Reporter
from clinrlhf.policy import load_policy
from clinrlhf.reward.io import load_reward_model
from clinrlhf.reward.ledger import deployment_ledger
from clinrlhf.reward.raters import with_rater_accuracies
from clinrlhf.settings import Settings, load_settings
from clinrlhf.world.world import World, load_world
from privacy.deid import config_sha256


class StageInputError(ValueError):
    """An input file that cannot be used; the message names the file, never its content."""


def read_snapshot(path: Path) -> tuple[list[Judgment], str]:
    """The judgments of an exported snapshot, and the SHA-256 of its exact bytes."""
    raw = path.read_bytes()
    try:
        judgments = from_ndjson(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise StageInputError(f"{path}: {err}") from None
    if not judgments:
        raise StageInputError(f"{path}: no judgments")
    return judgments, hashlib.sha256(raw).hexdigest()


def history_examples(settings: Settings, world: World, config: PipelineConfig) -> list[tuple[str, str]]:
    """The historical-practice corpus, as the pipeline builds it from the config's seed."""
    today = date.today()
    cohorts = make_cohorts(world, (config.history_patients, 0, 0), config.seed, today)
    return practice_examples(world, cohorts.history, settings.deid_secret, today, config.seed)


def train_sft_stage(out: Path, config: PipelineConfig, reporter: Reporter) -> dict[str, Any]:
    settings, world = load_settings(), load_world()
    torch.set_num_threads(1)  # see clinrlhf.pipeline.run: one thread is faster for models this small
    configure_mlflow(settings)
    examples = history_examples(settings, world, config)
    _, _, run = stages.sft_stage(
        world,
        examples,
        config.policy,
        config.sft,
        out,
        config_sha256(),
        reporter.callback("supervised policy"),
    )
    return {
        "stage": "sft",
        "mlflow_run_id": run.run_id,
        "dataset_sha256": run.dataset_sha256,
        "out": str(out),
    }


def train_reward_stage(
    policy_dir: Path, snapshot: Path, out: Path, config: PipelineConfig, reporter: Reporter
) -> dict[str, Any]:
    judgments, digest = read_snapshot(snapshot)
    settings, world = load_settings(), load_world()
    torch.set_num_threads(1)
    configure_mlflow(settings)
    policy, tokenizer = load_policy(policy_dir)
    result, pairs, run = stages.reward_stage(
        world,
        judgments,
        policy,
        tokenizer,
        with_rater_accuracies(config.reward, judgments),  # as the pipeline: from the snapshot's judgments
        (digest, snapshot),
        config_sha256(),
        reporter.callback("DP reward model"),
        ledger=deployment_ledger(settings, config.reward.dp.accountant),  # the pipeline's too
    )
    stages.save_reward(result, tokenizer, out, run)
    return {
        "stage": "reward",
        "mlflow_run_id": run.run_id,
        "preference_pairs": len(pairs),
        "epsilon": result.epsilon,
        "delta": result.delta,
        "out": str(out),
    }


def train_ppo_stage(
    policy_dir: Path, reward_dir: Path, snapshot: Path, out: Path, config: PipelineConfig, reporter: Reporter
) -> dict[str, Any]:
    judgments, digest = read_snapshot(snapshot)
    settings, world = load_settings(), load_world()
    torch.set_num_threads(1)
    configure_mlflow(settings)
    policy, tokenizer = load_policy(policy_dir)
    reward_model, _, metadata = load_reward_model(reward_dir)
    reward_run = stages.Trained(metadata.get(stages.REWARD_RUN_ID, "unknown"), digest)
    history = history_examples(settings, world, config) if config.ppo_prompts == "history" else []
    prompts = ppo_prompts(config.ppo_prompts, judgments, history)
    result, run = stages.ppo_stage(
        world,
        policy,
        tokenizer,
        reward_model,
        prompts,
        config.ppo,
        reward_run,
        config_sha256(),
        out,
        reporter.callback("KL-constrained PPO"),
        lora=config.lora,
        prompt_source=config.ppo_prompts,
    )
    return {
        "stage": "ppo",
        "mlflow_run_id": run.run_id,
        "kl": result.final_kl,
        "kl_target": config.ppo.kl_target,
        "out": str(out),
    }
