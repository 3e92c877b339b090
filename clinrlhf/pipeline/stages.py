"""The stages of the loop. Each takes what it needs, logs one MLflow run, and returns its result."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import mlflow
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.eval.bootstrap import interval_metrics, outcome_intervals
from clinrlhf.eval.evaluate import Evaluation, Scenario, evaluate_policy, subgroup_of
from clinrlhf.eval.unseen import unseen_metrics, unseen_rates
from clinrlhf.feedback import Judgment, snapshot_sha256, to_ndjson
from clinrlhf.formulary import Formulary, load_formulary
from clinrlhf.lineage.datasets import (
    PPO_PROMPTS_DATASET,
    TEST_DATASET,
    log_examples_dataset,
    log_rows_dataset,
    log_snapshot_dataset,
    prompt_rows,
)
from clinrlhf.lineage.runs import PPO_PROMPT_SOURCE, lineage_tags, stage_run
from clinrlhf.lineage.tracker import MLflowTracker, Tracker
from clinrlhf.pipeline.cohorts import examples_sha256
from clinrlhf.pipeline.policy_reward import INVALID_PENALTY, formulary_candidates, prescription_reward
from clinrlhf.policy.lora_config import LoRAConfig
from clinrlhf.policy.model import PolicyConfig, build_policy, save_policy
from clinrlhf.policy.tokenizer import build_tokenizer
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.trainer import PPOResult, train_ppo
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import (
    HELDOUT_FRACTION,
    fresh_scenarios,
    heldout_report,
    split_by_patient,
    utility_agreement,
)
from clinrlhf.reward.io import save_reward_model
from clinrlhf.reward.ledger import PrivacyLedger
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.reward.rater_release import log_rater_release
from clinrlhf.reward.trainer import RewardResult, train_reward
from clinrlhf.sft.config import SFTConfig
from clinrlhf.sft.trainer import train_sft
from clinrlhf.text.prompt import render_prompt, vocabulary_corpus
from clinrlhf.world.world import World

Progress = Callable[[int, int], None]


@dataclass
class Trained:
    run_id: str
    dataset_sha256: str


REWARD_RUN_ID = "mlflow.run_id"  # key, in the reward folder's metadata, of the run that trained it


def save_reward(
    result: RewardResult, tokenizer: PreTrainedTokenizerBase, out: Path, trained: Trained
) -> Path:
    """The reward model's folder, which `clinrlhf train ppo --reward` reads: weights (released under
    the DP guarantee, so safe to keep), tokenizer, DP parameters, and the run and snapshot it came from."""
    metadata = result.params | {
        REWARD_RUN_ID: trained.run_id,
        "clinrlhf.dataset_sha256": trained.dataset_sha256,
    }
    return save_reward_model(result.model, tokenizer, out, metadata)


def sft_stage(
    *,
    world: World,
    examples: list[tuple[str, str]],
    policy_config: PolicyConfig,
    config: SFTConfig,
    out: Path,
    deid_sha: str,
    progress: Progress,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Trained]:
    digest = examples_sha256(examples)
    with stage_run("sft", lineage=lineage_tags(digest, deid_sha)) as run:
        tokenizer = build_tokenizer(vocabulary_corpus(world))
        torch.manual_seed(config.seed or 0)
        model = build_policy(policy_config, tokenizer)
        mlflow.log_params({f"sft.{k}": v for k, v in vars(config).items()} | {"sft.examples": len(examples)})
        log_examples_dataset(examples, digest)
        result = train_sft(model, tokenizer, examples, config, MLflowTracker(), progress)
        mlflow.log_metrics(result.metrics)
        save_policy(result.model, tokenizer, out)
    return result.model, tokenizer, Trained(run.info.run_id, digest)


def save_snapshot(judgments: list[Judgment], folder: Path) -> tuple[str, Path]:
    """Write the exact de-identified training data, named by its SHA-256."""
    digest = snapshot_sha256(judgments)
    path = folder / f"{digest}.ndjson"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_ndjson(judgments))
    return digest, path


def reward_stage(
    *,
    world: World,
    judgments: list[Judgment],
    sft_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RewardConfig,
    snapshot: tuple[str, Path],
    deid_sha: str,
    progress: Progress,
    ledger: PrivacyLedger | None = None,
    utility_scenarios: list[Scenario] | None = None,
    roster: Sequence[str] | None = None,
    log_snapshot_file: bool = False,
) -> tuple[RewardResult, list[PreferencePair], Trained]:
    """Train the reward model on all but a held-out tenth of the patients, then log its held-out
    pairwise accuracy (overall and by sex and age band), calibration (reward.ece and the reliability
    table) and agreement with the world's utility on `utility_scenarios` (default: fresh synthetic
    patients that no cohort contains). Returns every pair, trained on or held out.

    With a `ledger` (the deployment's, clinrlhf.reward.ledger.deployment_ledger), the run is charged
    to its privacy unit's odometer and refused before any step if the composed ε would pass the
    budget or δ > 1/n; the odometer's figures after the charge are logged with the run (`ledger.*`).

    `roster` (the clinicians enrolled before training) keys the per-clinician tables the run may
    publish (clinrlhf.reward.rater_release): none under a clinician or patient unit, none without a
    roster. MLflow gets the snapshot's digest; the file itself only with `log_snapshot_file`."""
    digest, path = snapshot
    pairs = pairs_from_judgments(judgments, world=world)
    # Held out by patient, before training: a patient's pairs share one prompt, so a pair split would
    # test on near-copies of training pairs; and a held-out patient never enters the DP mechanism, so
    # the guarantee (per pair, clinician or patient) covers exactly the training side.
    train_pairs, heldout_pairs = split_by_patient(pairs, HELDOUT_FRACTION, config.seed or 0)
    if not train_pairs:  # too few patients to hold any out: train on all, measure nothing held out
        train_pairs, heldout_pairs = pairs, []
    with stage_run("reward", lineage=lineage_tags(digest, deid_sha)) as run:
        log_snapshot_dataset(path, digest, log_file=log_snapshot_file)
        backbone = cast(PreTrainedModel, copy.deepcopy(sft_model.transformer))
        result = train_reward(
            train_pairs,
            backbone,
            tokenizer,
            config,
            tracker=MLflowTracker(),
            progress=progress,
            ledger=ledger,
            snapshot_sha256=digest,
        )
        if ledger is not None:  # what the report's ledger section composes: the odometer's own figure
            params, metrics = ledger.odometer(config.privacy_unit)
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)
        mlflow.log_params(result.params | {"reward.heldout_fraction": HELDOUT_FRACTION})
        mlflow.log_metrics(result.metrics)
        # Who the reward model learned to trust, keyed by the roster, never by who is in the data.
        log_rater_release(MLflowTracker(), result, roster)
        if heldout_pairs:
            report = heldout_report(result.model, tokenizer, heldout_pairs)
            mlflow.log_metrics(report.metrics)
            mlflow.log_dict({"bins": report.reliability}, "reward/reliability.json")
        scenarios_ = fresh_scenarios(world) if utility_scenarios is None else utility_scenarios
        mlflow.log_metrics(utility_agreement(result.model, tokenizer, world, scenarios_))
    return result, pairs, Trained(run.info.run_id, digest)


def ppo_stage(
    *,
    world: World,
    sft_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward: ScalarHeadModel,
    prompts: list[str],
    config: PPOConfig,
    reward_run: Trained,
    deid_sha: str,
    out: Path,
    progress: Progress,
    lora: LoRAConfig | None = None,
    prompt_source: str = "feedback",
    formulary: Formulary | None = None,
    invalid_penalty: float = INVALID_PENALTY,
) -> tuple[PPOResult, Trained]:
    """PPO (`run_ppo`) inside the stage's MLflow run, then the policy saved to `out`. Under torchrun
    this is rank 0's part; the other ranks run `run_ppo` alone on the same inputs."""
    digest = reward_run.dataset_sha256
    tags = {"clinrlhf.reward_run_id": reward_run.run_id, PPO_PROMPT_SOURCE: prompt_source}
    with stage_run("ppo", lineage=lineage_tags(digest, deid_sha), tags=tags) as run:
        log_rows_dataset(prompt_rows(prompts), PPO_PROMPTS_DATASET, "training")
        result = run_ppo(
            world=world,
            sft_model=sft_model,
            tokenizer=tokenizer,
            reward=reward,
            prompts=prompts,
            config=config,
            lora=lora,
            checkpoint_dir=ppo_checkpoint_dir(out),
            tracker=MLflowTracker(),
            progress=progress,
            formulary=formulary,
            invalid_penalty=invalid_penalty,
        )
        formulary = formulary or load_formulary()
        validity = {
            "ppo.validity_penalty": invalid_penalty,
            "formulary.name": formulary.name,
            "formulary.version": formulary.version,
            "formulary.sha256": formulary.sha256,
        }
        mlflow.log_params(result.params | {"ppo.prompts": len(prompts)} | validity)
        mlflow.log_metrics(result.metrics)
        if lora is not None:
            from clinrlhf.policy.lora import merge_lora

            result.policy = merge_lora(result.policy)  # a plain model again, to save, serve and evaluate
            mlflow.log_params({f"lora.{key}": value for key, value in vars(lora).items()})
        save_policy(result.policy, tokenizer, out)
    return result, Trained(run.info.run_id, digest)


def ppo_checkpoint_dir(out: Path) -> Path:
    """Where the PPO run that saves its policy to `out` keeps its checkpoints (rank 0 reads and writes
    them), so that running the same command again resumes it."""
    return out.parent / "checkpoints"


def run_ppo(
    *,
    world: World,
    sft_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward: ScalarHeadModel,
    prompts: list[str],
    config: PPOConfig,
    lora: LoRAConfig | None,
    checkpoint_dir: Path | None,
    tracker: Tracker | None = None,
    progress: Progress | None = None,
    formulary: Formulary | None = None,
    invalid_penalty: float = INVALID_PENALTY,
) -> PPOResult:
    """KL-constrained PPO of a copy of `sft_model` against `reward`: what every torchrun rank runs,
    so that the policy, reference, value model and scoring cannot differ between ranks (ranks that
    scored differently would mix two objectives). Followers pass no tracker: only rank 0 logs.
    Without `checkpoint_dir` nothing is saved or resumed (clinrlhf.alignment's comparisons).
    `formulary` (default: the packaged one) and `invalid_penalty` (0: off) make the validity check."""
    policy, reference = policy_and_reference(sft_model, lora)
    return train_ppo(
        policy,
        reference,
        copy.deepcopy(reward),  # the value model starts from the reward model
        prescription_reward(world, reward, tokenizer, invalid_penalty, formulary),
        tokenizer,
        prompts,
        config,
        tracker=tracker,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        candidates=formulary_candidates(world, invalid_penalty, formulary),
        outside_score=-invalid_penalty,
    )


def policy_and_reference(
    sft_model: PreTrainedModel, lora: LoRAConfig | None
) -> tuple[PreTrainedModel, PreTrainedModel]:
    """The policy PPO trains and the frozen reference it is held near: two copies of the supervised
    model, or with LoRA one copy with adapters whose reference is the same base with them off."""
    if lora is None:
        return copy.deepcopy(sft_model), copy.deepcopy(sft_model).eval()
    from clinrlhf.policy.lora import add_lora, frozen_reference  # PEFT only for those who use it

    policy = cast(PreTrainedModel, add_lora(copy.deepcopy(sft_model), lora))
    # The reference calls the policy's base with the adapters off; it answers a forward as a model does.
    return policy, cast(PreTrainedModel, frozen_reference(policy))


def eval_stage(
    *,
    world: World,
    models: dict[str, PreTrainedModel],
    tokenizer: PreTrainedTokenizerBase,
    scenarios: list[Scenario],
    policy_run: str,
    training_prompts: Collection[str] = (),
) -> tuple[dict[str, Evaluation], str]:
    """Evaluate each model on the test scenarios in one eval run; `after` gets the bare names. Also
    logged: each model's rates on the scenarios whose prompt is not among `training_prompts`
    (eval.unseen_prompts.*, eval.before.unseen_prompts.*; clinrlhf.eval.unseen)."""
    with stage_run("eval", tags={"clinrlhf.policy_run_id": policy_run}) as run:
        prompts = [render_prompt(world, s.facts, s.target) for s in scenarios]
        log_rows_dataset(prompt_rows(prompts), TEST_DATASET, "evaluation")
        results = {
            name: evaluate_policy(model, tokenizer, world, scenarios) for name, model in models.items()
        }
        mlflow.log_metrics(results["after"].metrics())
        mlflow.log_metrics(
            {k.replace("eval.", "eval.before.", 1): v for k, v in results["before"].metrics().items()}
        )
        groups = [subgroup_of(s.facts) for s in scenarios]
        for name, prefix in (("after", "eval."), ("before", "eval.before.")):
            intervals = outcome_intervals(results[name].outcomes, groups)
            mlflow.log_metrics(interval_metrics(intervals, prefix))
            unseen = unseen_rates(prompts, results[name].outcomes, set(training_prompts))
            mlflow.log_metrics(unseen_metrics(unseen, prefix))
        mlflow.log_text(json.dumps({n: e.metrics() for n, e in results.items()}, indent=2), "eval.json")
    return results, run.info.run_id
