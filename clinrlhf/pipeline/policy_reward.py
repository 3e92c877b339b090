"""The reward PPO maximises: the reward model's score of a prescription, and a fixed penalty for a
response the service could not turn into a MedicationRequest for the problem at hand.

Why the penalty: the reward model has only seen well-formed prescriptions of drugs that treat the
problem, so its score elsewhere is extrapolation, and PPO finds those places. Unchecked it learned to
write "nitrofurantoin mg by mouth twice daily" for diabetes, which the reward model scored above the
guideline drug. Validity is a property of the formulary (the drug, its sig, what it may treat: the data file of
clinrlhf.formulary, never the guideline's tiers), not of the patient, so the check adds no knowledge
of which drug is right for whom. A penalty of 0 turns the check off (the ablation in docs/results.md).
"""

from __future__ import annotations

from functools import partial

import torch
from transformers import PreTrainedTokenizerBase

from clinrlhf.formulary import Formulary, load_formulary
from clinrlhf.ppo.enumerated_rollout import Candidates
from clinrlhf.ppo.rollout import RewardFn
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import parse_prescription, prescriptions
from clinrlhf.world.world import World

INVALID_PENALTY = 3.0
"""Subtracted from the score of an invalid response: about the spread of the reward model's scores
(centred at 0, most within ±3), so no invalid response outscores a valid one by extrapolation alone."""


def prescription_reward(
    world: World,
    reward_model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    invalid_penalty: float = INVALID_PENALTY,
    formulary: Formulary | None = None,
) -> RewardFn:
    """(prompts, responses) -> scores, with `invalid_penalty` off every response that is not a valid
    prescription under `formulary` (default: the packaged one)."""
    reward_model.eval()
    formulary = formulary or load_formulary()

    def reward(prompts: list[str], responses: list[str]) -> torch.Tensor:
        scores = score_texts(reward_model, tokenizer, prompts, responses)
        if not invalid_penalty:
            return scores
        invalid = [
            parse_prescription(world, p, r, formulary) is None
            for p, r in zip(prompts, responses, strict=True)
        ]
        return scores - invalid_penalty * torch.tensor(invalid, dtype=scores.dtype, device=scores.device)

    return reward


def formulary_candidates(
    world: World, invalid_penalty: float = INVALID_PENALTY, formulary: Formulary | None = None
) -> Candidates:
    """What formulary PPO (PPOConfig.rollouts) weighs for a prompt: every prescription that may treat
    its problem, or with the validity check off (`invalid_penalty` 0) every one the formulary
    dispenses. Anything else the policy might write scores `-invalid_penalty` ("outside")."""
    return partial(
        prescriptions, world, formulary=formulary or load_formulary(), for_target=bool(invalid_penalty)
    )
