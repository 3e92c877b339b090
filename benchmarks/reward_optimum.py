"""The reward as PPO sees it, beside the supervised prior, over every drug of the world: what the
benchmarks that score the reward's KL-regularised optimum, π*(y|x) ∝ π_sft(y|x)·exp(r(x, y)/β)
(Rafailov et al., 2023, eq. 4), read for one prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from clinrlhf.pipeline.policy_reward import INVALID_PENALTY
from clinrlhf.policy.generate import sequence_logprob
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.text.prompt import parse_prescription, render_response
from clinrlhf.world.world import World


@dataclass(frozen=True)
class DrugScores:
    drugs: list[str]
    """The world's drugs, sorted; the tensors below are in this order."""
    prior: torch.Tensor
    """log π_sft of each drug's response."""
    scores: torch.Tensor
    """The reward model's score of each drug's response."""
    valid: torch.Tensor
    """Whether each response is a valid prescription for the prompt under the formulary."""

    @property
    def shaped(self) -> torch.Tensor:
        """The reward PPO is given: the score less the validity penalty."""
        return self.scores - INVALID_PENALTY * (~self.valid).float()

    def tilted(self, beta: float) -> torch.Tensor:
        """log π* over the drugs at KL coefficient β."""
        return torch.log_softmax(self.prior + self.shaped / beta, 0)

    def optimum(self, beta: float) -> str:
        return self.drugs[int(self.tilted(beta).argmax())]


@torch.no_grad()
def drug_scores(
    world: World, reward: Any, tokenizer: Any, sft: Any, sft_tokenizer: Any, prompt: str
) -> DrugScores:
    drugs = sorted(world.drugs)
    texts = [render_response(world, d) for d in drugs]
    scores = score_texts(reward.eval(), tokenizer, [prompt] * len(drugs), texts)
    prior = torch.tensor([sequence_logprob(sft.eval(), sft_tokenizer, prompt, t) for t in texts])
    valid = torch.tensor([parse_prescription(world, prompt, t) is not None for t in texts])
    return DrugScores(drugs, prior, scores, valid)


def formulary_optimum(
    world: World, reward: Any, sft: Any, tokenizer: Any, cases: Any, beta: float, penalty: float
) -> list[str | None]:
    """The drug of the greedy choice of π* ∝ π_sft·exp(r/β) over what formulary PPO weighs for each
    case (its formulary prescriptions, and "outside" scored -penalty, which is no drug): the policy
    formulary PPO at that β converges to (clinrlhf.ppo.enumerated)."""
    from clinrlhf.pipeline.policy_reward import formulary_candidates, prescription_reward
    from clinrlhf.ppo.enumerated import optimum
    from clinrlhf.ppo.enumerated_rollout import build_table
    from clinrlhf.text.prompt import parse_drug, render_prompt

    prompts = [render_prompt(world, c.facts, c.target) for c in cases]
    candidates = formulary_candidates(world, penalty)
    scorer = prescription_reward(world, reward, tokenizer, penalty)
    table = build_table(sft.eval(), scorer, tokenizer, prompts, candidates, -penalty, 1.0)
    best = optimum(table.ref_logp, table.scores, table.mask, beta).argmax(-1).tolist()
    listed = [list(dict.fromkeys(candidates(p))) for p in prompts]
    return [parse_drug(world, r[b]) if b < len(r) else None for r, b in zip(listed, best, strict=True)]
