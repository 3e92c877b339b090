"""Using a trained reward model: score (prompt, response) texts, and measure it on held-out pairs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from clinrlhf.reward.encode import right_pad, sequence_ids
from clinrlhf.reward.model import ScalarHeadModel, last_token_scores
from clinrlhf.reward.pairs import PreferencePair


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
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = [sequence_ids(tokenizer, p, r) for p, r in zip(prompts, responses, strict=True)]
    scores = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        length = max(len(r) for r in chunk)
        ids = right_pad(chunk, length, tokenizer.pad_token_id).to(device)  # (b, T)
        mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in chunk], device=device)
        scores.append(last_token_scores(model(ids, mask), mask))
    model.train(was_training)
    return torch.cat(scores) if scores else torch.zeros(0)


def expected_calibration_error(p_chosen: torch.Tensor, bins: int = 10) -> float:
    """ECE of the Bradley–Terry probabilities σ(r_c - r_r) (Guo et al., 2017, https://arxiv.org/abs/1706.04599).

    Every pair is counted in both orders, (p, 1) and (1 - p, 0), so that a model which is right
    but overconfident is penalised, and the answer does not depend on which side was listed first.
    """
    probs = torch.cat([p_chosen, 1 - p_chosen])
    labels = torch.cat([torch.ones_like(p_chosen), torch.zeros_like(p_chosen)])
    which = (probs * bins).long().clamp(max=bins - 1)
    ece = torch.zeros(())
    for b in range(bins):
        inside = which == b
        if inside.any():
            ece += inside.float().mean() * (probs[inside].mean() - labels[inside].mean()).abs()
    return float(ece)


def evaluate_reward(
    model: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair]
) -> dict[str, float]:
    """Held-out pairwise accuracy (ties count half), mean Bradley–Terry loss, ECE, mean margin."""
    if not pairs:
        raise ValueError("no pairs to evaluate on")
    prompts = [p.prompt for p in pairs]
    chosen = score_texts(model, tokenizer, prompts, [p.chosen for p in pairs])
    rejected = score_texts(model, tokenizer, prompts, [p.rejected for p in pairs])
    diff = chosen - rejected
    accuracy = (diff > 0).float().mean() + 0.5 * (diff == 0).float().mean()
    return {
        "accuracy": float(accuracy),
        "loss": float(-torch.nn.functional.logsigmoid(diff).mean()),
        "ece": expected_calibration_error(torch.sigmoid(diff)),
        "margin": float(diff.mean()),
        "reward_mean": float(torch.cat([chosen, rejected]).mean()),
        "pairs": float(len(pairs)),
    }
