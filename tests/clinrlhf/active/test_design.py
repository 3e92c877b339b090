"""Greedy D-optimal batches: each pick is the pair of largest margin variance, which is the pick
that raises log det of the head's posterior precision most, and a batch spreads over directions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from clinrlhf.active.design import design_scores, fisher_weighted
from clinrlhf.active.uncertainty import feature_differences
from clinrlhf.reward.evaluate import score_texts, text_features
from clinrlhf.reward.model import ScalarHeadModel

Triples = tuple[list[str], list[str], list[str]]


def _order(scores: list[float], picks: int) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])[:picks]


def test_a_batch_spreads_over_directions_instead_of_repeating_one() -> None:
    e1, e2 = torch.eye(2, dtype=torch.double)
    candidates = torch.stack([e1, e1, e1, 0.9 * e2])  # e1 is the most uncertain, three times over
    scores = design_scores(candidates, torch.zeros(0, 2), picks=2)
    first, second = _order(scores, 2)
    assert first in {0, 1, 2} and second == 3  # top-2 by variance alone would ask about e1 twice


def test_what_the_panel_already_judged_lowers_that_direction() -> None:
    e1, e2 = torch.eye(2, dtype=torch.double)
    judged = torch.stack([e1] * 5)
    scores = design_scores(torch.stack([e1, 0.5 * e2]), judged, picks=1)
    assert _order(scores, 1) == [1]  # a shorter pair wins because nobody has asked about e2 yet


def test_each_pick_maximises_the_log_determinant_by_brute_force() -> None:
    generator = torch.Generator().manual_seed(3)
    candidates = torch.randn(12, 4, generator=generator, dtype=torch.double)
    judged = torch.randn(5, 4, generator=generator, dtype=torch.double)
    ridge, picks = 0.7, 4
    scores = design_scores(candidates, judged, picks, ridge=ridge)
    # The same scaling design_scores applies, so that `ridge` means the same thing here.
    scale = (candidates.pow(2).sum(1).mean() / 4).sqrt()
    d, precision = candidates / scale, ridge * torch.eye(4, dtype=torch.double)
    precision = precision + (judged / scale).T @ (judged / scale)
    chosen: list[int] = []
    for _ in range(picks):
        gains = [
            -float("inf") if i in chosen else torch.logdet(precision + torch.outer(d[i], d[i])).item()
            for i in range(len(d))
        ]
        best = max(range(len(d)), key=gains.__getitem__)
        chosen.append(best)
        precision = precision + torch.outer(d[best], d[best])
    assert _order(scores, picks) == chosen
    rest = [i for i in range(len(d)) if i not in chosen]
    variance = ((d @ torch.linalg.inv(precision)) * d).sum(1)
    assert [scores[i] for i in rest] == pytest.approx(variance[rest].tolist())
    assert min(scores[i] for i in chosen) > max(scores[i] for i in rest)


def test_scores_do_not_depend_on_the_features_scale() -> None:
    generator = torch.Generator().manual_seed(4)
    candidates = torch.randn(10, 3, generator=generator, dtype=torch.double)
    judged = torch.randn(4, 3, generator=generator, dtype=torch.double)
    assert design_scores(candidates, judged, 3) == pytest.approx(
        design_scores(100 * candidates, 100 * judged, 3)
    )


def test_design_refuses_what_it_cannot_do() -> None:
    assert design_scores(torch.zeros(0, 3), torch.zeros(0, 3), 5) == []
    with pytest.raises(ValueError, match=r"expected \(M, H\) and \(N, H\)"):
        design_scores(torch.zeros(2, 3), torch.zeros(1, 4), 1)
    with pytest.raises(ValueError, match="ridge must be positive"):
        design_scores(torch.ones(2, 3), torch.zeros(0, 3), 1, ridge=0.0)


def test_fisher_weight_keeps_coin_flips_and_shrinks_settled_pairs() -> None:
    head = torch.tensor([1.0, 0.0], dtype=torch.double)
    d = torch.tensor([[0.0, 2.0], [20.0, 0.0]], dtype=torch.double)
    weighted = fisher_weighted(d, head)
    assert weighted[0].tolist() == [0.0, 2.0]  # margin 0: p = 0.5, weight 1
    assert weighted[1].norm().item() / 20 < 1e-4  # margin 20: weight 2e^-10, the model is sure
    with pytest.raises(ValueError, match="an \\(H,\\) head"):
        fisher_weighted(d, torch.ones(3))


def test_features_are_what_the_head_reads(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, b = triples
    model = reward_model(1)
    features = text_features(model, tokenizer, prompts, a)
    assert features.shape == (len(prompts), model.head.in_features)
    with torch.no_grad():
        from_features = model.head(features).squeeze(-1)
    assert from_features.tolist() == pytest.approx(
        score_texts(model, tokenizer, prompts, a).tolist(), abs=1e-5
    )
    differences = feature_differences(model, tokenizer, prompts, a, b)
    assert torch.allclose(differences, features - text_features(model, tokenizer, prompts, b))
    with pytest.raises(ValueError, match="prompts"):
        feature_differences(model, tokenizer, prompts, a, b[:-1])
