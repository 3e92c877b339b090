"""The stages of the loop. Each takes what it needs, logs one MLflow run, and returns its result."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.eval.bootstrap import interval_metrics, outcome_intervals
from clinrlhf.eval.evaluate import Evaluation, Scenario, evaluate_policy, subgroup_of
from clinrlhf.feedback import Judgment, snapshot_sha256, to_ndjson
from clinrlhf.lineage.datasets import log_examples_dataset, log_snapshot_dataset
from clinrlhf.lineage.runs import lineage_tags, stage_run
from clinrlhf.lineage.tracker import MLflowTracker
from clinrlhf.pipeline.cohorts import examples_sha256
from clinrlhf.policy.model import PolicyConfig, build_policy, save_policy
from clinrlhf.policy.tokenizer import build_tokenizer
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.trainer import PPOResult, train_ppo
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.ledger import Budget, PrivacyLedger
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.reward.trainer import RewardResult, train_reward
from clinrlhf.sft.config import SFTConfig
from clinrlhf.sft.trainer import train_sft
from clinrlhf.text.prompt import parse_drug, vocabulary_corpus
from clinrlhf.world.world import World

Progress = Callable[[int, int], None]
FORMAT_PENALTY = 1.0  # subtracted from the reward of a response that names no formulary drug


@dataclass
class Trained:
    run_id: str
    dataset_sha256: str


def sft_stage(
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
        torch.manual_seed(config.seed)
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
    world: World,
    judgments: list[Judgment],
    sft_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: RewardConfig,
    snapshot: tuple[str, Path],
    deid_sha: str,
    progress: Progress,
    ledger_file: Path | None = None,
    budget_epsilon: float = 10.0,
) -> tuple[RewardResult, list[PreferencePair], Trained]:
    """With `ledger_file`, the run is charged to the snapshot's privacy ledger and refused (before
    any step) if the snapshot's composed ε would pass `budget_epsilon` at this run's δ."""
    digest, path = snapshot
    pairs = pairs_from_judgments(judgments, world=world)
    ledger = None
    if ledger_file is not None:
        ledger = PrivacyLedger(
            ledger_file, Budget(budget_epsilon, config.delta_for(len(pairs))), config.accountant
        )
    with stage_run("reward", lineage=lineage_tags(digest, deid_sha)) as run:
        log_snapshot_dataset(path, digest)
        backbone = copy.deepcopy(sft_model.transformer)
        result = train_reward(
            pairs,
            backbone,
            tokenizer,
            config,
            tracker=MLflowTracker(),
            progress=progress,
            ledger=ledger,
            snapshot_sha256=digest,
        )
        mlflow.log_params(result.params | {"reward.pairs": len(pairs)})
        mlflow.log_metrics(result.metrics)
        # Who the reward model learned to trust: clinician pseudonyms only, never names.
        mlflow.log_dict(result.rater_flip_rates, "raters/flip_rates.json")
        mlflow.log_metrics({f"reward.rater_flip.{c}": f for c, f in result.rater_flip_rates.items()})
    return result, pairs, Trained(run.info.run_id, digest)


def ppo_stage(
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
) -> tuple[PPOResult, Trained]:
    digest = reward_run.dataset_sha256
    with stage_run(
        "ppo", lineage=lineage_tags(digest, deid_sha), tags={"clinrlhf.reward_run_id": reward_run.run_id}
    ) as run:
        policy, reference = copy.deepcopy(sft_model), copy.deepcopy(sft_model).eval()
        value_model = copy.deepcopy(reward)
        reward_model = reward.eval()

        def reward_fn(batch_prompts: list[str], responses: list[str]) -> torch.Tensor:
            scores = score_texts(reward_model, tokenizer, batch_prompts, responses)
            # A response that names no formulary drug cannot become a MedicationRequest: penalise the
            # format, as PPO penalises a missing EOS, instead of trusting the reward model off-support.
            invalid = torch.tensor([parse_drug(world, r) is None for r in responses])
            return scores - FORMAT_PENALTY * invalid.to(scores.dtype)

        result = train_ppo(
            policy,
            reference,
            value_model,
            reward_fn,
            tokenizer,
            prompts,
            config,
            tracker=MLflowTracker(),
            progress=progress,
            checkpoint_dir=out.parent / "checkpoints",
        )
        mlflow.log_params(result.params | {"ppo.prompts": len(prompts)})
        mlflow.log_metrics(result.metrics)
        save_policy(result.policy, tokenizer, out)
    return result, Trained(run.info.run_id, digest)


def eval_stage(
    world: World,
    models: dict[str, PreTrainedModel],
    tokenizer: PreTrainedTokenizerBase,
    scenarios: list[Scenario],
    policy_run: str,
) -> tuple[dict[str, Evaluation], str]:
    """Evaluate each model on the held-out scenarios in one eval run; `after` gets the bare names."""
    with stage_run("eval", tags={"clinrlhf.policy_run_id": policy_run}) as run:
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
        mlflow.log_text(json.dumps({n: e.metrics() for n, e in results.items()}, indent=2), "eval.json")
    return results, run.info.run_id
