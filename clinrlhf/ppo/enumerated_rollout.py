"""PPO's experience when each prompt's responses can be listed (`PPOConfig.rollouts = "formulary"`):
every candidate of a prompt, scored once by the reward function and the reference (both frozen, so
the table is built before the first iteration and read by every one), and the policy's log-probs
of them, recomputed as it trains. The math is in clinrlhf.ppo.enumerated."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.distributed import Dist
from clinrlhf.ppo.enumerated import (
    action_mask,
    advantages,
    clipped_loss,
    entropy,
    exact_kl,
    expected,
    with_outside,
)
from clinrlhf.ppo.rollout import RewardFn

Candidates = Callable[[str], Sequence[str]]
"""prompt -> the responses PPO weighs for it (clinrlhf.text.prompt.prescriptions: the formulary's)."""

SCORING_BATCH = 256


@dataclass(frozen=True)
class CandidateTable:
    """Every prompt's candidates, tokenized, with their scores and reference log-probs; (P, K + 1)
    tensors carry "outside" (anything but the candidates) in the last column."""

    prompts: list[str]
    query_ids: list[list[int]]
    response_ids: list[list[list[int]]]
    """Per prompt, each candidate's tokens with EOS appended."""
    mask: torch.Tensor
    """(P, K + 1) true on real actions, "outside" included."""
    scores: torch.Tensor
    ref_logp: torch.Tensor

    def __len__(self) -> int:
        return len(self.prompts)


def sequence_logprobs(
    model: nn.Module,
    query_ids: Sequence[list[int]],
    response_ids: Sequence[list[int]],
    pad_token_id: int,
    temperature: float,
) -> torch.Tensor:
    """log π(response | query) of each row, summed over the response's tokens, (N,). Rows are padded
    on the right, so positions count from each row's first token as in sampling."""
    rows = [q + r for q, r in zip(query_ids, response_ids, strict=True)]
    width = max(len(row) for row in rows)
    device = next(model.parameters()).device
    ids = torch.tensor([row + [pad_token_id] * (width - len(row)) for row in rows], device=device)
    lengths = torch.tensor([len(row) for row in rows], device=device)
    starts = torch.tensor([len(q) for q in query_ids], device=device)
    attention = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1] / temperature
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    position = torch.arange(1, width, device=device)[None, :]  # the token each logit predicts
    in_response = (position >= starts[:, None]) & (position < lengths[:, None])
    return (token_logp * in_response).sum(-1)


def candidate_logp(
    model: nn.Module, table: CandidateTable, index: Sequence[int], pad_token_id: int, temperature: float
) -> torch.Tensor:
    """(len(index), K + 1) log-probs of the chosen prompts' candidates, "outside" last, -inf where a
    prompt has fewer candidates than K. Differentiable; wrap in no_grad where it need not be."""
    k = table.mask.shape[1] - 1
    rows = [(p, j) for p in index for j in range(len(table.response_ids[p]))]
    flat = sequence_logprobs(
        model,
        [table.query_ids[p] for p, _ in rows],
        [table.response_ids[p][j] for p, j in rows],
        pad_token_id,
        temperature,
    )
    device = flat.device
    # By position in `index`, not by prompt: a prompt drawn twice (with replacement) fills two rows.
    at = [i * k + j for i, p in enumerate(index) for j in range(len(table.response_ids[p]))]
    grid = torch.full((len(index) * k,), -torch.inf, device=device, dtype=flat.dtype)
    grid = grid.index_put((torch.tensor(at, device=device),), flat).view(len(index), k)
    return with_outside(grid, table.mask[list(index), :k].to(device))


@torch.no_grad()
def build_table(
    ref_policy: nn.Module,
    reward_fn: RewardFn,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    candidates: Candidates,
    outside_score: float,
    temperature: float,
) -> CandidateTable:
    """Score every candidate of every prompt once. A prompt without candidates is refused: PPO could
    learn nothing for it, and it says the formulary does not cover its problem."""
    responses = [list(dict.fromkeys(candidates(p))) for p in prompts]
    bare = [p for p, r in zip(prompts, responses, strict=True) if not r]
    if bare:
        raise ValueError(
            f"{len(bare)} of {len(prompts)} PPO prompts have no candidate response (the formulary lists no "
            f"drug that may treat their problem), e.g. {bare[0][-80:]!r}; add the problem to the formulary "
            'or train with rollouts="sampled"'
        )
    eos = tokenizer.eos_token_id
    query_ids = [tokenizer(p)["input_ids"] for p in prompts]
    response_ids = [[tokenizer(r)["input_ids"] + [eos] for r in rs] for rs in responses]
    k = max(len(rs) for rs in responses)
    mask = torch.zeros(len(prompts), k, dtype=torch.bool)
    for p, rs in enumerate(responses):
        mask[p, : len(rs)] = True
    # A prompt listed twice (ppo_prompt_balance repeats prompts to weight their draws) is scored once.
    first = {prompt: p for p, prompt in reversed(list(enumerate(prompts)))}
    rows = [(p, j) for p, rs in enumerate(responses) if first[prompts[p]] == p for j in range(len(rs))]
    scores = torch.zeros(len(prompts), k)
    ref = torch.full((len(prompts), k), -torch.inf)
    for begin in range(0, len(rows), SCORING_BATCH):
        chunk = rows[begin : begin + SCORING_BATCH]
        got = reward_fn([prompts[p] for p, _ in chunk], [responses[p][j] for p, j in chunk])
        logp = sequence_logprobs(
            ref_policy,
            [query_ids[p] for p, _ in chunk],
            [response_ids[p][j] for p, j in chunk],
            tokenizer.pad_token_id,
            temperature,
        )
        for (p, j), score, lp in zip(chunk, got.reshape(-1).tolist(), logp.tolist(), strict=True):
            scores[p, j], ref[p, j] = score, lp
    repeats = [(p, first[prompt]) for p, prompt in enumerate(prompts) if first[prompt] != p]
    for p, q in repeats:
        scores[p], ref[p] = scores[q], ref[q]
    return CandidateTable(
        prompts=list(prompts),
        query_ids=query_ids,
        response_ids=response_ids,
        mask=action_mask(mask),
        scores=torch.cat([scores, torch.full((len(prompts), 1), float(outside_score))], dim=-1),
        ref_logp=with_outside(ref, mask),
    )


@dataclass(frozen=True)
class EnumeratedExperience:
    """One iteration's prompts (`index` into the table) and, per prompt and action, the rollout
    policy's log-probability and the advantage; (P, K + 1) like the table's rows at `index`."""

    index: list[int]
    mask: torch.Tensor
    logp: torch.Tensor
    advantage: torch.Tensor


@torch.no_grad()
def enumerated_rollout(
    policy: PreTrainedModel,
    table: CandidateTable,
    index: list[int],
    beta: float,
    config: PPOConfig,
    pad_token_id: int,
) -> tuple[EnumeratedExperience, dict[str, float]]:
    """The rollout policy's exact distribution over each drawn prompt's actions and their exact
    advantages. -> (the experience, this rank's rollout metrics)."""
    device = next(policy.parameters()).device
    mask, scores, ref = (t[index].to(device) for t in (table.mask, table.scores, table.ref_logp))
    old = candidate_logp(policy, table, index, pad_token_id, config.temperature)
    kl, score = exact_kl(old, ref, mask), expected(old, scores, mask)
    metrics = {
        "ppo.kl": float(kl.mean()),
        "ppo.reward_mean": float(score.mean()),
        "ppo.non_score_reward": float(-beta * kl.mean()),
        "ppo.rlhf_reward": float((score - beta * kl).mean()),
        "ppo.entropy": float(entropy(old, mask).mean()),
        "ppo.candidate_mass": float(1.0 - old[:, -1].exp().mean()),
    }
    return EnumeratedExperience(index, mask, old, advantages(old, ref, scores, mask, beta)), metrics


def enumerated_update(
    train_policy: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    parameters: list[nn.Parameter],
    table: CandidateTable,
    exp: EnumeratedExperience,
    config: PPOConfig,
    pad_token_id: int,
    generator: torch.Generator,
    dist: Dist,
) -> dict[str, float]:
    """Clipped updates in mini-batches of prompts, `ppo_epochs` passes (through `train_policy`, the
    DDP wrapper under torchrun, so every rank takes the same number of steps). -> this rank's stats."""
    stats: dict[str, list[float]] = defaultdict(list)
    size = max(1, len(exp.index) // config.mini_batches)
    for _ in range(config.ppo_epochs):
        order = torch.randperm(len(exp.index), generator=generator).tolist()
        epoch_kl = []
        for begin in range(0, len(exp.index), size):
            rows = order[begin : begin + size]
            logp = candidate_logp(
                train_policy, table, [exp.index[r] for r in rows], pad_token_id, config.temperature
            )
            old, mask = exp.logp[rows], exp.mask[rows]
            loss, clipfrac = clipped_loss(logp, old, exp.advantage[rows], mask, config.cliprange)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():  # KL(old || new), exact
                approx_kl = float(exact_kl(old, logp.detach(), mask).mean())
            epoch_kl.append(approx_kl)
            stats["ppo.approx_kl"].append(approx_kl)
            stats["ppo.clipfrac"].append(float(clipfrac))
            stats["ppo.policy_loss"].append(loss.item())
        if (
            config.target_approx_kl is not None
            and dist.all_reduce_mean(sum(epoch_kl) / len(epoch_kl)) > config.target_approx_kl
        ):
            break
    return {name: sum(v) / len(v) for name, v in stats.items()}


def table_sha256(table: CandidateTable) -> str:
    """SHA-256 of what the candidates are and how they score: a checkpoint made against another
    reward model, formulary or validity penalty belongs to another run."""
    digest = hashlib.sha256()
    for responses in table.response_ids:
        digest.update(repr(responses).encode())
    for tensor in (table.mask, table.scores, table.ref_logp):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
