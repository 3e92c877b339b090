"""Using a trained reward model: score (prompt, response) texts, and measure it on held-out data.

Three measurements, all on data the model never trained on:

- held-out pairs (split off by patient, `split_by_patient`): pairwise accuracy overall and by the
  patient's sex and age band (the groups clinrlhf.eval uses for the policy), and the calibration of
  σ(r_c − r_r) (clinrlhf.reward.calibration);
- held-out (prompt, drug) candidates: how well the rewards agree with the world's true utility.

These are computed from clinicians' judgments in the clear, outside the DP mechanism: the model is
DP with respect to its training pairs, while the held-out metrics are ordinary statistics of the
held-out pairs (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from clinrlhf.eval.evaluate import Scenario, subgroup_of
from clinrlhf.reward.calibration import (
    calibration_error,
    expected_calibration_error,
    pearson,
    reliability_table,
    spearman,
)
from clinrlhf.reward.encode import right_pad, sequence_ids
from clinrlhf.reward.model import ScalarHeadModel, last_positions
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.facts import AGE_CAP, PatientFacts
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import score, utility
from clinrlhf.world.world import World

HELDOUT_FRACTION = 0.1
"""The share of patients whose pairs are held out of reward training, for evaluation."""
UTILITY_PATIENTS = 200
"""Synthetic patients whose (prompt, drug) candidates measure agreement with the true utility."""
UTILITY_SEED = 1_000_003
"""Their seed: far from the small seeds the pipeline's cohorts use (3·seed + 0, 1, 2)."""

__all__ = [
    "HELDOUT_FRACTION",
    "UTILITY_PATIENTS",
    "HeldoutReport",
    "accuracy",
    "evaluate_reward",
    "expected_calibration_error",
    "fresh_scenarios",
    "heldout_report",
    "pair_margins",
    "score_texts",
    "split_by_patient",
    "subgroup_accuracy",
    "subgroup_of_prompt",
    "text_features",
    "utility_agreement",
    "utility_candidates",
]


def _batches(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    batch_size: int,
    device: torch.device,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input ids, attention mask) of each batch of prompt + response + EOS, right-padded. Built
    before any model runs, so a mismatch raises before the caller switches the model to eval."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    rows = [sequence_ids(tokenizer, p, r) for p, r in zip(prompts, responses, strict=True)]
    batches = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        length = max(len(r) for r in chunk)
        ids = right_pad(chunk, length, tokenizer.pad_token_id).to(device)  # (b, T)
        mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in chunk], device=device)
        batches.append((ids, mask))
    return batches


@torch.no_grad()
def score_texts(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """The reward of each response to its prompt, read at the EOS appended to it. -> (B,)"""
    return model.head(text_features(model, tokenizer, prompts, responses, batch_size=batch_size)).squeeze(-1)


@torch.no_grad()
def text_features(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """The head's input at the EOS appended to each response (the reward is `model.head` of it). -> (B, H)"""
    batches = _batches(tokenizer, prompts, responses, batch_size, next(model.parameters()).device)
    was_training = model.training
    model.eval()
    rows = []
    for ids, mask in batches:
        hidden = model.hidden(ids, mask)  # (b, T, H)
        rows.append(hidden[torch.arange(len(ids), device=ids.device), last_positions(mask)])
    model.train(was_training)
    return torch.cat(rows) if rows else torch.zeros(0, model.head.in_features)


def pair_margins(
    model: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r_chosen, r_rejected) of each pair, each (N,)."""
    prompts = [p.prompt for p in pairs]
    chosen = score_texts(model, tokenizer, prompts, [p.chosen for p in pairs])
    return chosen, score_texts(model, tokenizer, prompts, [p.rejected for p in pairs])


def accuracy(diff: torch.Tensor) -> float:
    """Fraction of pairs ranked the clinician's way by r_c − r_r, a tie counting half (a model that
    cannot tell the two apart is right half the time, not never)."""
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def evaluate_reward(
    model: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair]
) -> dict[str, float]:
    """Held-out pairwise accuracy (ties count half), mean Bradley–Terry loss, ECE, mean margin."""
    if not pairs:
        raise ValueError("no pairs to evaluate on")
    chosen, rejected = pair_margins(model, tokenizer, pairs)
    diff = chosen - rejected
    return {
        "accuracy": accuracy(diff),
        "loss": float(-torch.nn.functional.logsigmoid(diff).mean()),
        "ece": expected_calibration_error(torch.sigmoid(diff)),
        "margin": float(diff.mean()),
        "reward_mean": float(torch.cat([chosen, rejected]).mean()),
        "pairs": float(len(pairs)),
    }


def split_by_patient(
    pairs: Sequence[PreferencePair], fraction: float = HELDOUT_FRACTION, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held out): every pair of a patient on the same side, about `fraction` of the
    patients held out.

    By patient, not by pair: a patient's pairs share one prompt (often the same two responses judged
    by several clinicians), so a pair split would test on near-copies of training pairs and
    overstate accuracy; and a per-patient DP guarantee is about whole patients, so a patient is
    either in the private training set or in the clear evaluation set, never both.

    The side is a seeded hash of what the patient's pairs say, never of their pseudonym: pseudonyms
    are keyed, and a split that followed the key gave every new home (new key) another held-out
    set, hence another reward model and another run. Patients whose pairs say exactly the same are
    numbered in pseudonym order; they are interchangeable, so which of them is which changes nothing
    trained or measured. A patient keeps their side when other patients join the snapshot.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    groups: dict[str, list[PreferencePair]] = defaultdict(list)
    for pair in pairs:
        groups[pair.patient].append(pair)
    content = {patient: _content(group) for patient, group in groups.items()}
    seen: dict[str, int] = defaultdict(int)
    held: set[str] = set()
    for patient in sorted(groups, key=lambda name: (content[name], name)):
        if _hash_unit(f"{content[patient]}\x00{seen[content[patient]]}", seed) < fraction:
            held.add(patient)
        seen[content[patient]] += 1
    train: list[PreferencePair] = []
    heldout: list[PreferencePair] = []
    for pair in pairs:
        (heldout if pair.patient in held else train).append(pair)
    return train, heldout


def _content(pairs: Sequence[PreferencePair]) -> str:
    """What a patient's pairs say, without a pseudonym (patient, clinician or card): key-free."""
    lines = sorted(json.dumps([p.prompt, p.chosen, p.rejected, p.source, p.margin]) for p in pairs)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _hash_unit(name: str, seed: int) -> float:
    """A name's place in [0, 1), uniform and fixed for a seed."""
    digest = hashlib.sha256(f"heldout\x00{seed}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def subgroup_of_prompt(prompt: str) -> dict[str, str]:
    """The (sex, age band) subgroup of the patient a prompt was rendered for, exactly as
    clinrlhf.eval.evaluate.subgroup_of puts their facts (the prompt's 5-year band lies inside one
    20-year band). Raises on a prompt that does not start "sex S age BAND"."""
    words = prompt.split()
    if len(words) < 4 or words[0] != "sex" or words[2] != "age":
        raise ValueError("not a rendered prompt: it does not start with 'sex … age …'")
    band = words[3]
    age = AGE_CAP if band == "90+" else int(band.split("-")[0])
    return subgroup_of(PatientFacts(age=age, sex=words[1]))


def subgroup_accuracy(diff: torch.Tensor, groups: Sequence[dict[str, str]]) -> dict[str, dict[str, float]]:
    """{attribute: {group: accuracy}} of the pairs in each group (ties count half)."""
    members: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        for attribute, value in group.items():
            members[attribute, value].append(index)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (attribute, value), indices in sorted(members.items()):
        out[attribute][value] = accuracy(diff[torch.tensor(indices)])
    return dict(out)


@dataclass(frozen=True)
class HeldoutReport:
    metrics: dict[str, float]
    """reward.heldout_accuracy, reward.heldout_loss, reward.ece, reward.heldout_pairs, and
    reward.heldout_accuracy.<attribute>.<group> / reward.heldout_pairs.<attribute>.<group>."""
    reliability: list[dict[str, float | int | None]]
    """The reliability table behind reward.ece (clinrlhf.reward.calibration.reliability_table)."""


def heldout_report(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    bins: int = 10,
) -> HeldoutReport:
    """Accuracy, loss and calibration on held-out pairs, overall and by the patient's subgroup."""
    if not pairs:
        raise ValueError("no held-out pairs to evaluate on")
    chosen, rejected = pair_margins(model, tokenizer, pairs)
    diff = chosen - rejected
    table = reliability_table(torch.sigmoid(diff), bins)
    metrics = {
        "reward.heldout_accuracy": accuracy(diff),
        "reward.heldout_loss": float(-torch.nn.functional.logsigmoid(diff).mean()),
        "reward.ece": calibration_error(table),
        "reward.heldout_pairs": float(len(pairs)),
    }
    groups = [subgroup_of_prompt(p.prompt) for p in pairs]
    for attribute, by_group in subgroup_accuracy(diff, groups).items():
        for group, value in by_group.items():
            metrics[f"reward.heldout_accuracy.{attribute}.{group}"] = value
            metrics[f"reward.heldout_pairs.{attribute}.{group}"] = float(
                sum(g[attribute] == group for g in groups)
            )
    return HeldoutReport(metrics, table)


def fresh_scenarios(world: World, n: int = UTILITY_PATIENTS, seed: int = UTILITY_SEED) -> list[Scenario]:
    """Every (patient, target) of n synthetic patients drawn for this measurement alone, so that no
    training prompt was rendered from them."""
    return [Scenario(p.facts, t) for p in generate_patients(world, n, seed) for t in p.targets]


def utility_candidates(
    world: World, scenarios: Sequence[Scenario]
) -> tuple[list[str], list[str], list[float]]:
    """(prompts, responses, utilities): every formulary drug for every scenario, with the world's
    utility of recommending it (+1 concordant, 0 off-target, −2 unsafe). The whole formulary,
    because any drug is a response the policy can produce and PPO will ask the reward about."""
    prompts, responses, utilities = [], [], []
    for s in scenarios:
        prompt = render_prompt(world, s.facts, s.target)
        for drug in sorted(world.drugs):
            prompts.append(prompt)
            responses.append(render_response(world, drug))
            utilities.append(utility(score(world, s.facts, s.target, drug)))
    return prompts, responses, utilities


def utility_agreement(
    model: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, world: World, scenarios: Sequence[Scenario]
) -> dict[str, float]:
    """Spearman and Pearson correlation of the learned reward with the true utility over the
    candidates of held-out scenarios (pooled across prompts, as PPO compares rewards across them)."""
    prompts, responses, utilities = utility_candidates(world, scenarios)
    if not prompts:
        raise ValueError("no held-out scenarios to score")
    rewards = score_texts(model, tokenizer, prompts, responses).tolist()
    return {
        "reward.utility_spearman": spearman(rewards, utilities),
        "reward.utility_pearson": pearson(rewards, utilities),
        "reward.utility_candidates": float(len(prompts)),
    }
