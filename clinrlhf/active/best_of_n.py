"""The study's measure: held-out concordance of the best-of-n policy, the reward model's choice among
the supervised policy's samples (not a PPO run), with the floor and ceiling any reranker has."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from clinrlhf.active.pool import Heldout
from clinrlhf.eval.evaluate import Scenario
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import parse_drug, parse_prescription
from clinrlhf.world.scoring import Outcome, score
from clinrlhf.world.world import World


def concordant(world: World, s: Scenario, text: str) -> bool:
    return score(world, s.facts, s.target, parse_drug(world, text)) is Outcome.CONCORDANT


def eligible(world: World, prompt: str, candidates: Sequence[str]) -> list[int]:
    """The candidates the service could turn into a MedicationRequest for the problem (formulary drug,
    formulary sig, treats the target: parse_prescription), or all of them when none can. The check is
    a property of the formulary, never of the patient, as in PPO's reward
    (clinrlhf.pipeline.policy_reward): the reward model has only seen valid prescriptions, so its
    score of anything else is extrapolation."""
    valid = [i for i, c in enumerate(candidates) if parse_prescription(world, prompt, c) is not None]
    return valid or list(range(len(candidates)))


def baselines(world: World, held: Heldout) -> dict[str, float]:
    """What any reranker of these candidates gets: a random eligible one (floor), the best (oracle)."""
    floor = ceiling = 0.0
    for s, prompt, cs in zip(held.scenarios, held.prompts, held.candidates, strict=True):
        hits = [concordant(world, s, cs[i]) for i in eligible(world, prompt, cs)]
        floor += sum(hits) / len(hits)
        ceiling += any(hits)
    return {"random_pick": floor / len(held.scenarios), "oracle": ceiling / len(held.scenarios)}


def best_of_n(
    world: World, reward: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, held: Heldout
) -> dict[str, float]:
    """Concordance and unsafe rate of the eligible candidate the reward model scores highest."""
    flat_prompts = [p for p, cs in zip(held.prompts, held.candidates, strict=True) for _ in cs]
    flat = [c for cs in held.candidates for c in cs]
    rewards = score_texts(reward, tokenizer, flat_prompts, flat).tolist()
    good = unsafe = at = 0
    for s, prompt, cs in zip(held.scenarios, held.prompts, held.candidates, strict=True):
        pick = cs[max(eligible(world, prompt, cs), key=lambda i: rewards[at + i])]
        at += len(cs)
        outcome = score(world, s.facts, s.target, parse_drug(world, pick))
        good += outcome is Outcome.CONCORDANT
        unsafe += outcome is Outcome.UNSAFE
    return {"concordance": good / len(held.scenarios), "unsafe_rate": unsafe / len(held.scenarios)}
