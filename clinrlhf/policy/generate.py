"""Sampling responses from a policy, and turning them into ranked treatment suggestions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.text.prompt import parse_drug
from clinrlhf.world.world import World


@dataclass(frozen=True)
class Rollout:
    query: torch.Tensor  # (B, Q) left-padded prompt ids
    response: torch.Tensor  # (B, R) sampled ids, padded after EOS with pad_token_id
    texts: list[str]  # decoded responses


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    *,
    max_new_tokens: int = 16,
    temperature: float = 1.0,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Autoregressive sampling with an explicit loop, so the temperature used here is exactly the
    one PPO uses again when it recomputes log-probs (Huang et al., 2024, detail 6)."""
    device = model.device
    enc = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    query, mask = enc["input_ids"], enc["attention_mask"]
    ids, attn = query, mask
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    past, out = None, []
    step_ids = ids
    for _ in range(max_new_tokens):
        positions = (attn.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1] :]
        logits_out = model(
            input_ids=step_ids,
            attention_mask=attn,
            position_ids=positions,
            past_key_values=past,
            use_cache=True,
        )
        past = logits_out.past_key_values
        logits = logits_out.logits[:, -1, :] / temperature
        token = logits.argmax(-1) if greedy else draw(torch.softmax(logits, -1), generator)
        token = torch.where(done, torch.full_like(token, pad), token)
        out.append(token)
        done |= token == eos
        step_ids = token[:, None]
        attn = torch.cat([attn, (~done | (token == eos))[:, None].long()], dim=1)
        if done.all():
            break
    response = torch.stack(out, dim=1)
    texts = tokenizer.batch_decode(response, skip_special_tokens=True)
    return Rollout(query=query, response=response, texts=texts)


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of `probs` (B, V). The generator may live on the CPU while the model runs on a
    GPU: PPO keeps it there so a checkpoint's random stream resumes on any device. Then only B uniforms
    cross over, not B x V probabilities."""
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    uniforms = torch.rand(probs.shape[0], generator=generator, dtype=torch.float64)
    return inverse_cdf(probs, uniforms.to(probs.device))


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """The token whose slice of [0, total) holds each uniform in [0, 1): (B, V), (B,) -> (B,).
    `right=True` gives a zero-probability token an empty slice, so it is never drawn."""
    cdf = probs.double().cumsum(-1)
    scaled = (uniforms * cdf[:, -1])[:, None]
    return torch.searchsorted(cdf, scaled, right=True).squeeze(-1).clamp(max=probs.shape[-1] - 1)


@dataclass(frozen=True)
class PolicySuggestion:
    drug: str | None
    text: str
    logprob: float


@torch.no_grad()
def suggest(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    world: World,
    prompt: str,
    *,
    n: int = 2,
    tries: int = 16,
    generator: torch.Generator | None = None,
) -> list[PolicySuggestion]:
    """Up to `n` distinct drugs for one prompt. The greedy answer leads, so the first suggestion is
    the policy's recommendation; the alternatives are *sampled* from the policy, not its runners-up.

    Sampling matters for learning: clinicians then also judge drugs the policy rarely proposes, so
    the reward model sees them compared, and PPO cannot exploit a drug no one ever judged.
    """
    first = sample(model, tokenizer, [prompt], greedy=True)
    pool = sample(model, tokenizer, [prompt] * tries, generator=generator)
    seen: dict[str | None, str] = {}
    for text in first.texts + pool.texts:
        drug = parse_drug(world, text)
        if drug is not None and drug not in seen:
            seen[drug] = text.strip()
        if len(seen) == n:
            break
    return [
        PolicySuggestion(drug, text, sequence_logprob(model, tokenizer, prompt, text))
        for drug, text in seen.items()
    ]


@torch.no_grad()
def sequence_logprob(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompt: str, response: str
) -> float:
    q = tokenizer(prompt)["input_ids"]
    r = tokenizer(response)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([q + r], device=model.device)
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
    target = ids[0, 1:]
    return float(logp.gather(-1, target[:, None]).squeeze(-1)[len(q) - 1 :].sum())
