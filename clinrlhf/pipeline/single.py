"""One stage at a time, from files: the body of `clinrlhf train sft|reward|ppo`.

The pipeline passes models in memory; here each stage reads what the previous one wrote (a policy
folder, a reward folder, a de-identified snapshot) and runs the very same stage function, so a
stage trained alone is logged and tagged exactly as in the pipeline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.feedback import Judgment
from clinrlhf.feedback.judgment import from_ndjson
from clinrlhf.formulary import load_formulary
from clinrlhf.lineage.runs import configure_mlflow
from clinrlhf.pipeline import stages
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, practice_examples
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.prompts import balance_by_age_band, ppo_prompts
from clinrlhf.pipeline.run import Reporter
from clinrlhf.policy import load_policy
from clinrlhf.ppo.distributed import Dist, current
from clinrlhf.reward.io import load_reward_model
from clinrlhf.reward.ledger import deployment_ledger
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.raters import with_rater_accuracies
from clinrlhf.settings import Settings, load_settings
from clinrlhf.world.world import World, load_world
from privacy.deid import config_sha256


class StageInputError(ValueError):
    """An input file that cannot be used; the message names the file, never its content."""


def consistent_read(path: Path) -> tuple[list[Judgment], str]:
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
    cohorts = make_cohorts(world, CohortSizes(history=config.history_patients), config.seed, today)
    return practice_examples(world, cohorts.history, settings.deid_secret, today, config.seed)


def train_sft_stage(*, out: Path, config: PipelineConfig, reporter: Reporter) -> dict[str, Any]:
    settings, world = load_settings(), load_world()
    torch.set_num_threads(1)  # see clinrlhf.pipeline.run: one thread is faster for models this small
    configure_mlflow(settings)
    examples = history_examples(settings, world, config)
    _, _, run = stages.sft_stage(
        world=world,
        examples=examples,
        policy_config=config.policy,
        config=config.sft,
        out=out,
        deid_sha=config_sha256(),
        progress=reporter.callback("supervised policy"),
    )
    return {
        "stage": "sft",
        "mlflow_run_id": run.run_id,
        "dataset_sha256": run.dataset_sha256,
        "out": str(out),
    }


def train_reward_stage(
    *, policy_dir: Path, snapshot: Path, out: Path, config: PipelineConfig, reporter: Reporter
) -> dict[str, Any]:
    judgments, digest = consistent_read(snapshot)
    settings, world = load_settings(), load_world()
    torch.set_num_threads(1)
    configure_mlflow(settings)
    policy, tokenizer = load_policy(policy_dir)
    result, pairs, run = stages.reward_stage(
        world=world,
        judgments=judgments,
        sft_model=policy,
        tokenizer=tokenizer,
        # as the pipeline: from the snapshot's judgments
        config=with_rater_accuracies(config.reward, judgments),
        snapshot=(digest, snapshot),
        deid_sha=config_sha256(),
        progress=reporter.callback("DP reward model"),
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


@dataclass(frozen=True)
class PPOInputs:
    """What the PPO stage trains from, read from the previous stages' files."""

    world: World
    policy: PreTrainedModel  # the supervised policy: PPO's starting point and its reference
    tokenizer: PreTrainedTokenizerBase
    reward: ScalarHeadModel
    reward_run: stages.Trained  # the reward model's MLflow run and the snapshot it was trained on
    prompts: list[str]


def ppo_inputs(
    *, policy_dir: Path, reward_dir: Path, snapshot: Path, config: PipelineConfig, dist: Dist | None = None
) -> PPOInputs:
    """PPO's inputs, built the same way on every rank of a `torchrun` launch (`dist`, by default the
    running process group). Rank 0 alone reads the snapshot, and with `ppo_prompts: "history"` the
    settings' de-identification key, to build the prompts (`ppo_prompts`), and sends them to the
    others: the date, a development key or a file that changes between two reads cannot give the
    ranks two prompt lists. Every rank loads the two model folders itself."""
    dist, world = dist or current(), load_world()
    built: tuple[list[str], str] | StageInputError | None = None
    if dist.is_main:
        try:
            built = _prompts(snapshot, world, config)
        except StageInputError as err:  # sent on too, so every rank stops with the same one line
            built = err
    built = dist.broadcast_object(built)
    if isinstance(built, StageInputError):
        raise built
    assert built is not None  # rank 0 always sends something
    prompts, digest = built
    policy, tokenizer = load_policy(policy_dir)
    reward, _, metadata = load_reward_model(reward_dir)
    reward_run = stages.Trained(metadata.get(stages.REWARD_RUN_ID, "unknown"), digest)
    return PPOInputs(world, policy, tokenizer, reward, reward_run, prompts)


def _prompts(snapshot: Path, world: World, config: PipelineConfig) -> tuple[list[str], str]:
    """The prompts the config names, and the snapshot's SHA-256 (the lineage of the PPO run)."""
    judgments, digest = consistent_read(snapshot)
    history = history_examples(load_settings(), world, config) if config.ppo_prompts == "history" else []
    prompts = balance_by_age_band(
        ppo_prompts(config.ppo_prompts, judgments, history), config.ppo_prompt_balance
    )
    return prompts, digest


def train_ppo_stage(
    *,
    policy_dir: Path,
    reward_dir: Path,
    snapshot: Path,
    out: Path,
    config: PipelineConfig,
    reporter: Reporter,
) -> dict[str, Any]:
    """`clinrlhf train ppo`, and rank 0's part of it under torchrun (`follow_ppo_stage` is the rest)."""
    torch.set_num_threads(1)
    inputs = ppo_inputs(policy_dir=policy_dir, reward_dir=reward_dir, snapshot=snapshot, config=config)
    configure_mlflow(load_settings())
    result, run = stages.ppo_stage(
        world=inputs.world,
        sft_model=inputs.policy,
        tokenizer=inputs.tokenizer,
        reward=inputs.reward,
        prompts=inputs.prompts,
        config=config.ppo,
        reward_run=inputs.reward_run,
        deid_sha=config_sha256(),
        out=out,
        progress=reporter.callback("KL-constrained PPO"),
        lora=config.lora,
        prompt_source=config.ppo_prompts,
        formulary=load_formulary(config.formulary),
        invalid_penalty=config.validity_penalty,
    )
    return {
        "stage": "ppo",
        "mlflow_run_id": run.run_id,
        "kl": result.final_kl,
        "kl_target": config.ppo.kl_target,
        "out": str(out),
    }


def follow_ppo_stage(
    *, policy_dir: Path, reward_dir: Path, snapshot: Path, out: Path, config: PipelineConfig
) -> None:
    """A torchrun rank other than 0: the inputs and the PPO run of `train_ppo_stage`, without its MLflow
    run and without writing anything (the trainer leaves logs and checkpoints to rank 0)."""
    torch.set_num_threads(1)
    inputs = ppo_inputs(policy_dir=policy_dir, reward_dir=reward_dir, snapshot=snapshot, config=config)
    stages.run_ppo(
        world=inputs.world,
        sft_model=inputs.policy,
        tokenizer=inputs.tokenizer,
        reward=inputs.reward,
        prompts=inputs.prompts,
        config=config.ppo,
        lora=config.lora,
        checkpoint_dir=stages.ppo_checkpoint_dir(out),  # read on rank 0 only, and sent on
        formulary=load_formulary(config.formulary),  # every rank scores alike
        invalid_penalty=config.validity_penalty,
    )
