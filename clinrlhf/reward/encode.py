"""One preference pair as one row, so that Opacus' per-sample gradient is a per-pair gradient.

A row is ``[prompt | chosen eos | rejected eos | pad…]``. The attention mask is causal except that
rejected tokens may not see chosen ones, and the rejected tokens' position ids restart where the
prompt ends. Each response is therefore computed exactly as in its own ``prompt + response + eos``
sequence (tests check this): the prompt is causal, so its hidden states do not depend on what
follows and can be shared (prefix sharing, Wang et al., 2024, https://arxiv.org/abs/2410.20305;
half the tokens of packing two full sequences). Both rewards come out of one sample, so clipping
that sample's gradient bounds the whole pair's influence by the clipping norm, which is what the DP
guarantee "with respect to one pair" needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.raters import rater_bucket

PROMPT, CHOSEN, REJECTED, PAD = 0, 1, 2, 3


@dataclass(frozen=True)
class EncodedPairs:
    input_ids: torch.Tensor  # (N, L) long
    lengths: torch.Tensor  # (N, 3) long: tokens of prompt, of chosen + eos, of rejected + eos
    margins: torch.Tensor  # (N,) float
    raters: torch.Tensor  # (N,) long: each pair's rater bucket (clinrlhf.reward.raters), 0 without buckets
    accuracy: torch.Tensor  # (N,) float: each pair's rater accuracy (RewardConfig.rater_weighting), else 1


def sequence_ids(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str) -> list[int]:
    """prompt + response + eos: the tokens the policy generates and PPO scores, so the reward is read
    at the EOS the policy emits (policy.generate.sequence_logprob builds them the same way)."""
    return tokenizer(prompt)["input_ids"] + response_ids(tokenizer, response)


def response_ids(tokenizer: PreTrainedTokenizerBase, response: str) -> list[int]:
    return tokenizer(response)["input_ids"] + [tokenizer.eos_token_id]


def right_pad(rows: Sequence[list[int]], length: int, pad_id: int) -> torch.Tensor:
    return torch.tensor([row + [pad_id] * (length - len(row)) for row in rows], dtype=torch.long)


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    max_positions: int | None = None,
    rater_buckets: int | None = None,
    rater_accuracies: Mapping[str, float] | None = None,
) -> EncodedPairs:
    """Tokenize pairs into right-padded rows. Raises if a prompt plus response exceeds max_positions
    (the backbone's position table): truncating the prompt would silently drop findings.
    `rater_buckets` hashes each pair's clinician into that many buckets; `rater_accuracies` gives
    each pair its clinician's accuracy (clinicians it does not name get 1)."""
    if not pairs:
        raise ValueError("no preference pairs to encode")
    rows, lengths = [], []
    for p in pairs:
        prompt = tokenizer(p.prompt)["input_ids"]
        chosen, rejected = response_ids(tokenizer, p.chosen), response_ids(tokenizer, p.rejected)
        rows.append(prompt + chosen + rejected)
        lengths.append((len(prompt), len(chosen), len(rejected)))
    longest = max(lp + max(lc, lr) for lp, lc, lr in lengths)
    if max_positions is not None and longest > max_positions:
        raise ValueError(f"a prompt plus response is {longest} tokens; the model's limit is {max_positions}")
    ids = right_pad(rows, max(len(r) for r in rows), tokenizer.pad_token_id)
    margins = torch.tensor([p.margin for p in pairs], dtype=torch.float32)
    raters = torch.tensor(
        [rater_bucket(p.clinician, rater_buckets) if rater_buckets else 0 for p in pairs], dtype=torch.long
    )
    known = rater_accuracies or {}
    accuracy = torch.tensor([known.get(p.clinician, 1.0) for p in pairs], dtype=torch.float32)
    return EncodedPairs(ids, torch.tensor(lengths, dtype=torch.long), margins, raters, accuracy)


def segments(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, L) segment of each position: PROMPT, CHOSEN, REJECTED or PAD."""
    pos = torch.arange(width, device=lengths.device)[None, :]  # (1, L)
    ends = lengths.cumsum(-1)  # (B, 3)
    return (pos >= ends[:, 0:1]).long() + (pos >= ends[:, 1:2]).long() + (pos >= ends[:, 2:3]).long()


def pair_attention_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, 1, L, L) bool, True where a query may attend to a key: causal, and no rejected query sees
    a chosen key. Right padding needs no more: a real token never looks forward to a pad, and a pad
    attends at least to itself, so no row is empty (an empty row makes SDPA return NaN)."""
    seg = segments(lengths, width)  # (B, L)
    idx = torch.arange(width, device=lengths.device)
    causal = idx[None, :] <= idx[:, None]  # (L, L) query x key
    crossed = (seg[:, :, None] == REJECTED) & (seg[:, None, :] == CHOSEN)  # (B, L, L)
    return (causal[None] & ~crossed)[:, None]


def pair_position_ids(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, L) position ids: 0.. through prompt and chosen, restarting at the prompt's end for the
    rejected response, 0 on pads. One row per sample, never broadcast: Opacus needs a batch
    dimension on every input of a module with parameters (the position embedding)."""
    seg = segments(lengths, width)
    pos = torch.arange(width, device=lengths.device).expand_as(seg)
    pos = torch.where(seg == REJECTED, pos - lengths[:, 1:2], pos)
    return torch.where(seg == PAD, torch.zeros_like(pos), pos).contiguous()


def reward_positions(lengths: torch.Tensor) -> torch.Tensor:
    """(B, 2) index of the chosen and the rejected EOS in each row."""
    ends = lengths.cumsum(-1)
    return torch.stack([ends[:, 1] - 1, ends[:, 2] - 1], dim=1)


def as_additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask as the additive float mask eager attention expects (0 keep, min drop)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def pair_rewards(
    model: nn.Module, input_ids: torch.Tensor, lengths: torch.Tensor, *, eager: bool = False
) -> torch.Tensor:
    """(B, L) pair rows, as encoded above -> (B, 2) rewards, chosen then rejected, in one forward pass."""
    width = input_ids.shape[1]
    mask = pair_attention_mask(lengths, width)  # (B, 1, L, L)
    if eager:  # eager attention adds its mask to the scores; SDPA takes booleans
        mask = as_additive(mask, next(model.parameters()).dtype)
    per_token = model(input_ids, mask, pair_position_ids(lengths, width))  # (B, L)
    return per_token.gather(1, reward_positions(lengths))
