"""DPO and RLAIF + PPO trained from one supervised policy, each refusing feedback of the other source."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, cast

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.dpo.config import DPOConfig
from clinrlhf.dpo.trainer import train_dpo
from clinrlhf.feedback.judgment import CLINICIAN
from clinrlhf.pipeline.stages import run_ppo
from clinrlhf.policy.lora_config import LoRAConfig
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.ledger import PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward
from clinrlhf.rlaif.feedback import require_source
from clinrlhf.rlaif.rubric import SOURCE as AI_SOURCE
from clinrlhf.world.world import World


def run_dpo(
    train_pairs: Sequence[PreferencePair],
    sft: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: DPOConfig,
    *,
    ledger: PrivacyLedger | None = None,
    snapshot_sha256: str | None = None,
) -> tuple[PreTrainedModel, dict[str, Any]]:
    """DPO from `sft` (left unchanged) on clinicians' pairs; a DP run is charged to `ledger`."""
    require_source(train_pairs, CLINICIAN)
    started = time.monotonic()
    result = train_dpo(
        train_pairs,
        sft,
        tokenizer,
        config,
        ledger=ledger if config.dp.enabled else None,
        snapshot_sha256=snapshot_sha256 if config.dp.enabled else None,
    )
    info = {
        "feedback_source": CLINICIAN,
        "train_pairs": len(train_pairs),
        "config": asdict(config),
        "epsilon": result.epsilon if config.dp.enabled else math.inf,
        "accountant_epsilon": result.accountant_epsilon if config.dp.enabled else math.inf,
        "delta": result.delta,
        "noise_multiplier": result.noise_multiplier,
        "sample_rate": result.sample_rate,
        "steps": result.steps,
        "final_loss": result.metrics["dpo.loss"],
        "final_margin": result.metrics["dpo.margin"],
        "train_seconds": time.monotonic() - started,
    }
    return result.policy, info


def run_rlaif(
    world: World,
    train_pairs: Sequence[PreferencePair],
    sft: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward_config: RewardConfig,
    ppo_config: PPOConfig,
    prompts: list[str],
    *,
    ledger: PrivacyLedger | None = None,
    snapshot_sha256: str | None = None,
    lora: LoRAConfig | None = None,
) -> tuple[PreTrainedModel, Any, dict[str, Any]]:
    """A reward model on the rubric's pairs, trained as clinrlhf.pipeline.stages.reward_stage trains
    one, then PPO as ppo_stage runs it (stages.run_ppo). -> (policy, reward result, info)"""
    require_source(train_pairs, AI_SOURCE)
    started = time.monotonic()
    backbone = cast(PreTrainedModel, copy.deepcopy(sft.transformer))
    reward = train_reward(
        list(train_pairs), backbone, tokenizer, reward_config, ledger=ledger, snapshot_sha256=snapshot_sha256
    )
    reward_seconds = time.monotonic() - started
    ppo = run_ppo(
        world=world,
        sft_model=sft,
        tokenizer=tokenizer,
        reward=reward.model,
        prompts=prompts,
        config=ppo_config,
        lora=lora,
        checkpoint_dir=None,
    )
    aligned = ppo.policy
    if lora is not None:
        from clinrlhf.policy.lora import merge_lora

        aligned = merge_lora(aligned)
    info = {
        "feedback_source": AI_SOURCE,
        "train_pairs": len(train_pairs),
        "reward_config": {k: v for k, v in asdict(reward_config).items() if k != "rater_accuracies"},
        "ppo_config": asdict(ppo_config),
        "epsilon": reward.epsilon if reward_config.dp.enabled else math.inf,
        "delta": reward.delta,
        "noise_multiplier": reward.noise_multiplier,
        "sample_rate": reward.sample_rate,
        "steps": reward.steps,
        "final_kl": ppo.final_kl,
        "final_kl_coef": ppo.final_kl_coef,
        "final_reward_mean": ppo.metrics.get("ppo.final_reward_mean"),
        "reward_seconds": reward_seconds,
        "ppo_seconds": time.monotonic() - started - reward_seconds,
        "train_seconds": time.monotonic() - started,
    }
    return aligned.eval(), reward, info
