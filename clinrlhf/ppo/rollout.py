"""One PPO rollout: sample responses, then score them with the policy, the reference, the value model
and the reward function, all on the same left-padded `prompt + response` rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.policy.generate import sample
from clinrlhf.ppo.core import entropy_from_logits

RewardFn = Callable[[list[str], list[str]], torch.Tensor]
"""(prompts, responses) -> (B,) scores; responses are decoded text without special tokens."""


@dataclass(frozen=True)
class Experience:
    """A batch of rollouts. Response-token tensors are (B, R); `mask` is True up to and including EOS."""

    prompts: list[str]
    texts: list[str]
    query_response: torch.Tensor  # (B, Q + R) token ids, prompt left-padded
    attention_mask: torch.Tensor  # (B, Q + R)
    context_length: int  # Q
    response: torch.Tensor  # (B, R)
    mask: torch.Tensor  # (B, R) bool
    has_eos: torch.Tensor  # (B,) bool
    logprobs: torch.Tensor  # (B, R) log pi_old(token), at the sampling temperature
    ref_logprobs: torch.Tensor  # (B, R) log pi_ref(token), at the same temperature
    values: torch.Tensor  # (B, R) V(state before each token)
    entropy: torch.Tensor  # (B, R) policy entropy at each step
    scores: torch.Tensor  # (B,) reward-function scores

    def take(self, index: torch.Tensor) -> Experience:
        """The rows at `index` (a mini-batch)."""
        picked = {
            f.name: getattr(self, f.name)[index]
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        rows = index.tolist()
        return replace(
            self, prompts=[self.prompts[i] for i in rows], texts=[self.texts[i] for i in rows], **picked
        )


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as during sampling."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def response_mask(response: torch.Tensor, eos_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, R) True on tokens up to and including the first EOS (all tokens if none), and (B,) has-EOS."""
    is_eos = response == eos_token_id
    after_eos = (is_eos.long().cumsum(-1) - is_eos.long()) > 0  # strictly after the first EOS
    return ~after_eos, is_eos.any(-1)


def response_logprobs(
    policy: PreTrainedModel, exp: Experience, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the sampled response tokens and per-step entropies, each (B, R).

    Logits are divided by the sampling temperature, or the ratio would compare two different
    distributions (Huang et al., 2024, detail 6)."""
    logits = policy(
        input_ids=exp.query_response,
        attention_mask=exp.attention_mask,
        position_ids=position_ids(exp.attention_mask),
    ).logits  # (B, Q + R, V)
    logits = logits[:, exp.context_length - 1 : -1] / temperature  # position t predicts token t + 1
    logp = torch.log_softmax(logits, dim=-1).gather(-1, exp.response[..., None]).squeeze(-1)
    return logp, entropy_from_logits(logits.detach())


def response_values(value_model: nn.Module, exp: Experience) -> torch.Tensor:
    """V of the state before each response token, (B, R)."""
    per_token = value_model(exp.query_response, exp.attention_mask, position_ids(exp.attention_mask))
    return per_token[:, exp.context_length - 1 : -1]


@torch.no_grad()
def collect(
    policy: PreTrainedModel,
    ref_policy: PreTrainedModel,
    value_model: nn.Module,
    reward_fn: RewardFn,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    *,
    response_length: int,
    temperature: float,
    generator: torch.Generator,
) -> Experience:
    sampled = sample(
        policy,
        tokenizer,
        prompts,
        max_new_tokens=response_length,
        temperature=temperature,
        generator=generator,
    )
    mask, has_eos = response_mask(sampled.response, tokenizer.eos_token_id)
    device = sampled.query.device
    query_mask = tokenizer(prompts, return_tensors="pt", padding=True)["attention_mask"].to(device)
    response = sampled.response.masked_fill(~mask, tokenizer.pad_token_id)
    exp = Experience(
        prompts=list(prompts),
        texts=sampled.texts,
        query_response=torch.cat([sampled.query, response], dim=1),
        attention_mask=torch.cat([query_mask, mask.long()], dim=1),
        context_length=sampled.query.shape[1],
        response=response,
        mask=mask,
        has_eos=has_eos,
        logprobs=torch.empty(0),
        ref_logprobs=torch.empty(0),
        values=torch.empty(0),
        entropy=torch.empty(0),
        scores=torch.empty(0),
    )
    logprobs, entropy = response_logprobs(policy, exp, temperature)
    ref_logprobs, _ = response_logprobs(ref_policy, exp, temperature)
    values = response_values(value_model, exp)
    scores = reward_fn(exp.prompts, exp.texts)  # the reward model may sit on another device
    scores = torch.as_tensor(scores, dtype=torch.float32).detach().reshape(-1).to(device)
    return replace(
        exp, logprobs=logprobs, ref_logprobs=ref_logprobs, values=values, entropy=entropy, scores=scores
    )
