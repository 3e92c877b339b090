"""KL(π‖reference) of a policy, estimated on held-out prompts as PPO measures its own final KL."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.ppo.core import kl_k1
from clinrlhf.ppo.rollout import collect


class _ZeroValue(nn.Module):
    """A value model that answers 0 everywhere: `collect` wants one, the KL estimate needs none."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)


def _no_reward(prompts: list[str], responses: list[str]) -> torch.Tensor:
    return torch.zeros(len(prompts))


@torch.no_grad()
def kl_to_reference(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    samples: int,
    response_length: int = 20,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, float]:
    """KL(policy ‖ reference) in nats per response: responses sampled from the policy on prompts drawn
    uniformly (seeded), k1 summed over each response's tokens (EOS included), as PPO's final_kl; with
    a normal-approximation 95% interval of the mean."""
    if samples < 2 or not prompts:
        raise ValueError("the KL estimate needs prompts and at least 2 samples")
    policy.eval()
    reference.eval()
    generator = torch.Generator().manual_seed(seed)
    per_response = []
    for begin in range(0, samples, batch_size):
        n = min(batch_size, samples - begin)
        picks = torch.randint(len(prompts), (n,), generator=generator).tolist()
        exp = collect(
            policy,
            reference,
            _ZeroValue(),
            _no_reward,
            tokenizer,
            [prompts[i] for i in picks],
            response_length=response_length,
            temperature=temperature,
            generator=generator,
        )
        per_response.append((kl_k1(exp.logprobs, exp.ref_logprobs) * exp.mask).sum(-1).double())
    kl = torch.cat(per_response)
    mean, half = float(kl.mean()), 1.96 * float(kl.std()) / math.sqrt(len(kl))
    return {"kl": mean, "kl_ci_low": mean - half, "kl_ci_high": mean + half, "samples": float(len(kl))}
