"""One row of the alignment comparison per method: what was trained, measured and charged, and where
each figure came from. The pipeline's own SFT and PPO rows take their training facts from MLflow."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from finished_run import RunFiles
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.alignment.ledger_copy import LedgerCopy
from clinrlhf.alignment.methods import run_dpo, run_rlaif
from clinrlhf.alignment.settings import NAMES, BenchSettings, subsample
from clinrlhf.eval.compare import evaluate_method, paired_difference
from clinrlhf.eval.evaluate import Scenario
from clinrlhf.feedback.judgment import CLINICIAN, Judgment, to_ndjson
from clinrlhf.policy import save_policy
from clinrlhf.ppo.trainer import KLCapExceeded
from clinrlhf.reward.evaluate import (
    HELDOUT_FRACTION,
    fresh_scenarios,
    heldout_report,
    split_by_patient,
    utility_agreement,
)
from clinrlhf.reward.ledger import BudgetExceededError
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.rlaif.feedback import rlaif_pairs, rubric_agreement, rubric_judgments
from clinrlhf.rlaif.rubric import RubricConfig
from clinrlhf.world.world import World


class Measure:
    """measure(key, model): a method's held-out figures (clinrlhf.eval.compare), its KL to SFT
    unless with_kl is false; keeps each method's outcomes for the paired differences."""

    def __init__(
        self,
        world: World,
        tokenizer: PreTrainedTokenizerBase,
        scenarios: Sequence[Scenario],
        sft: PreTrainedModel,
        settings: BenchSettings,
        seed: int,
        *,
        log: Callable[[str], None],
    ) -> None:
        self.world, self.tokenizer, self.scenarios, self.sft = world, tokenizer, scenarios, sft
        self.settings, self.seed, self.log = settings, seed, log
        self.outcomes: dict[str, Any] = {}

    def __call__(self, key: str, model: PreTrainedModel, with_kl: bool = True) -> dict[str, Any]:
        self.log(f"evaluating {key} on {len(self.scenarios)} held-out scenarios")
        result = evaluate_method(
            model,
            self.tokenizer,
            self.world,
            self.scenarios,
            reference=self.sft if with_kl else None,
            kl_samples=self.settings.kl_samples,
            ppo_config=self.settings.ppo,
            seed=self.seed,
        )
        self.outcomes[key] = result.pop("outcomes")
        return result


def sft_row(measured: dict[str, Any], run: RunFiles) -> dict[str, Any]:
    """The supervised policy every method starts from: no feedback, no ε, trained by the pipeline."""
    return measured | {
        "feedback_source": "none",
        "epsilon": 0.0,
        "snapshot_epsilon_after": None,
        "kl_heldout": {"kl": 0.0},
        "train_seconds": run.mlflow.get("sft", {}).get("seconds"),
        "train_seconds_source": "MLflow (the pipeline's sft stage)",
        "pipeline_eval": run.mlflow.get("eval", {}).get("metrics", {}).get("eval.before.concordance"),
    }


def ppo_row(measured: dict[str, Any], run: RunFiles, ledger: LedgerCopy) -> dict[str, Any]:
    """The run's own PPO policy: its ε is the pipeline's reward run's, the last one the home charged."""
    ppo_stage = run.mlflow.get("ppo", {})
    reward_stage = run.mlflow.get("reward", {})
    pipeline_entries = ledger.ledger.entries(ledger.digest)[: ledger.home_entries]
    own = (
        pipeline_entries[-1].epsilon
        if pipeline_entries
        else reward_stage.get("metrics", {}).get("dp.epsilon")
    )
    seconds = [s.get("seconds") for s in (reward_stage, ppo_stage)]
    return measured | {
        "feedback_source": CLINICIAN,
        "epsilon": own,
        "snapshot_epsilon_after": ledger.steps[0]["composed_epsilon"],
        "final_kl": ppo_stage.get("metrics", {}).get("ppo.final_kl"),
        "train_seconds": sum(seconds) if all(s is not None for s in seconds) else None,
        "train_seconds_source": "MLflow (the pipeline's reward + ppo stages)",
        "pipeline_eval": run.mlflow.get("eval", {}).get("metrics", {}).get("eval.concordance"),
        "reward_heldout_accuracy": reward_stage.get("metrics", {}).get("reward.heldout_accuracy"),
        "reward_utility_spearman": reward_stage.get("metrics", {}).get("reward.utility_spearman"),
    }


def dpo_row(
    key: str,
    train_pairs: Sequence[PreferencePair],
    sft: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    settings: BenchSettings,
    ledger: LedgerCopy,
    measure: Measure,
    *,
    work: Path,
) -> dict[str, Any]:
    """DPO on the clinicians' training pairs, with DP ("dpo-dp": charged to the copy) or without ("dpo")."""
    dp = key == "dpo-dp"
    config = replace(settings.dpo, dp=replace(settings.dpo.dp, enabled=dp))
    try:
        policy, info = run_dpo(
            train_pairs, sft, tokenizer, config, ledger=ledger.ledger, snapshot_sha256=ledger.digest
        )
    except BudgetExceededError as err:  # cannot happen with the copy's budget; reported if it does
        return {"error": f"{type(err).__name__}: {err}"}
    after = ledger.record(NAMES[key].format(eps=settings.dpo.dp.target_epsilon)) if dp else None
    save_policy(policy, tokenizer, work / "policies" / key)
    return measure(key, policy) | info | {"snapshot_epsilon_after": after}


def _pair_metrics(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair]
) -> dict[str, float]:
    return {k: v for k, v in heldout_report(model, tokenizer, pairs).metrics.items() if k.count(".") == 1}


def rlaif_row(
    world: World,
    run: RunFiles,
    judgments: Sequence[Judgment],
    clinician_pairs: Sequence[PreferencePair],
    heldout_pairs: Sequence[PreferencePair],
    sft: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    settings: BenchSettings,
    prompts: list[str],
    ledger: LedgerCopy,
    measure: Measure,
    *,
    work: Path,
    rubric_error_rate: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The rubric labels the clinicians' cards (saved as their own snapshot, source "ai"); a DP reward
    model on those pairs, then PPO; charged to the clinicians' snapshot on the ledger copy."""
    config = run.config
    ai = rubric_judgments(world, judgments, RubricConfig(error_rate=rubric_error_rate, seed=config.seed))
    ai_digest = hashlib.sha256(to_ndjson(ai)).hexdigest()
    (work / "ai_feedback").mkdir(exist_ok=True)
    (work / "ai_feedback" / f"{ai_digest}.ndjson").write_bytes(to_ndjson(ai))
    ai_pairs = rlaif_pairs(world, ai)
    ai_train, ai_heldout = split_by_patient(ai_pairs, HELDOUT_FRACTION, settings.reward.seed)
    if not ai_train:
        ai_train, ai_heldout = ai_pairs, []
    ai_train = subsample(ai_train, settings.max_train_pairs, config.seed)
    log(f"training RLAIF: reward on {len(ai_train)} rubric pairs, then PPO for {settings.ppo.steps} steps")
    try:
        policy, reward, info = run_rlaif(
            world,
            ai_train,
            sft,
            tokenizer,
            settings.reward,
            settings.ppo,
            prompts,
            ledger=ledger.ledger,
            snapshot_sha256=ledger.digest,
            lora=config.lora,
        )
    except (BudgetExceededError, KLCapExceeded) as err:
        ledger.record("RLAIF reward model (DP)")  # a reward that trained was charged all the same
        return {"error": f"{type(err).__name__}: {err}"}
    after = ledger.record("RLAIF reward model (DP)")
    save_policy(policy, tokenizer, work / "policies" / "rlaif")
    diagnostics: dict[str, Any] = {
        "rubric_judgments": len(ai),
        "rubric_snapshot_sha256": ai_digest,
        "rubric_pairs": len(ai_pairs),
        "rubric_agreement_with_clinicians": rubric_agreement(world, clinician_pairs),
        "utility": utility_agreement(
            reward.model, tokenizer, world, fresh_scenarios(world, settings.utility_patients)
        ),
    }
    if heldout_pairs:
        diagnostics["on_clinicians_heldout_pairs"] = _pair_metrics(reward.model, tokenizer, heldout_pairs)
    if ai_heldout:
        diagnostics["on_rubric_heldout_pairs"] = _pair_metrics(reward.model, tokenizer, ai_heldout)
    return measure("rlaif", policy) | info | {"snapshot_epsilon_after": after, "reward_model": diagnostics}


def settings_summary(settings: BenchSettings, rubric_error_rate: float) -> dict[str, Any]:
    """What each method trained with, as the JSON reports it."""
    return {
        "dpo": asdict(settings.dpo),
        "rlaif_reward": {k: v for k, v in asdict(settings.reward).items() if k != "rater_accuracies"},
        "ppo": asdict(settings.ppo),
        "kl_samples": settings.kl_samples,
        "max_train_pairs": settings.max_train_pairs,
        "rubric_error_rate": rubric_error_rate,
    }


def add_differences(rows: dict[str, dict[str, Any]], outcomes: dict[str, Any], seed: int) -> None:
    """Each measured method's paired change from SFT and from the pipeline's PPO, on the same scenarios."""
    baseline_keys = [k for k in ("sft", "ppo") if k in outcomes]
    for key, row in rows.items():
        if key not in outcomes:
            continue
        row["difference"] = {
            f"vs {NAMES[b]}": paired_difference(outcomes[key], outcomes[b], seed=seed)
            for b in baseline_keys
            if b != key
        }
