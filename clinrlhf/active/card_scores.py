"""How each strategy scores the remaining cards: the reward models' uncertainty, greedy D-optimal
design, double Thompson sampling of a card's pair, and the oracle reference that reads the world."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import torch
from transformers import PreTrainedTokenizerBase

from clinrlhf.active.design import design_scores, fisher_weighted
from clinrlhf.active.pairs import best_disagreement, thompson_pair
from clinrlhf.active.pool import Pool
from clinrlhf.active.review import Drugs
from clinrlhf.active.selection import ReviewCandidate
from clinrlhf.active.study_settings import StudySettings
from clinrlhf.active.uncertainty import (
    ensemble_rewards,
    feature_differences,
    mc_dropout_rewards,
    pair_uncertainty,
)
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.text.prompt import parse_drug
from clinrlhf.world.scoring import score, utility
from clinrlhf.world.world import World


def design_of(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    asked: list[ReviewCandidate],
    cases: list[ReviewCandidate],
    picks: int,
) -> list[float]:
    """Greedy D-optimal scores of `cases` given the pairs already `asked` (Fisher-weighted by the
    model's own preference probabilities), the first `picks` above the rest."""

    def differences(chosen: list[ReviewCandidate]) -> torch.Tensor:
        d = feature_differences(
            model,
            tokenizer,
            [c.prompt for c in chosen],
            [c.responses[0] for c in chosen],
            [c.responses[1] for c in chosen],
        )
        return fisher_weighted(d, model.head.weight.detach().squeeze(0))

    return design_scores(differences(cases), differences(asked), picks)


def uncertainty_of(
    members: list[ScalarHeadModel],
    tokenizer: PreTrainedTokenizerBase,
    cases: list[ReviewCandidate],
    settings: StudySettings,
    seed: int,
) -> list[float]:
    prompts = [c.prompt for c in cases]
    a, b = [c.responses[0] for c in cases], [c.responses[1] for c in cases]
    if settings.uncertainty == "ensemble":
        ra, rb = (
            ensemble_rewards(members, tokenizer, prompts, a),
            ensemble_rewards(members, tokenizer, prompts, b),
        )
    else:
        both = mc_dropout_rewards(
            members[0],
            tokenizer,
            prompts + prompts,
            a + b,
            passes=settings.passes,
            rate=settings.dropout,
            seed=seed,
        )
        ra, rb = both[:, : len(cases)], both[:, len(cases) :]
    return pair_uncertainty(ra, rb, settings.method).tolist()  # type: ignore[arg-type]


def thompson_cases(
    world: World,
    members: list[ScalarHeadModel],
    tokenizer: PreTrainedTokenizerBase,
    pool: Pool,
    remaining: list[ReviewCandidate],
    seed: int,
) -> tuple[list[ReviewCandidate], list[float], Drugs]:
    """Each remaining card with its pair chosen by double Thompson sampling over the ensemble's
    rewards of the card's candidates (clinrlhf.active.pairs), scored by how unsure the ensemble is of
    its best candidate (then by the pair's probability std); cards with fewer than two valid
    candidates keep their pair and go last."""
    rng, spans = random.Random(seed), []
    prompts: list[str] = []
    texts: list[str] = []
    for case in remaining:
        options = pool.options.get(case.id, [])
        spans.append((len(texts), len(options)))
        prompts += [case.prompt] * len(options)
        texts += options
    rewards = ensemble_rewards(members, tokenizer, prompts, texts)
    cases, scores, shown = [], [], {}
    for case, (start, k) in zip(remaining, spans, strict=True):
        if k < 2:
            cases.append(case)
            scores.append(-1.0)
            continue
        block = rewards[:, start : start + k]
        i, j = thompson_pair(block, rng)
        a, b = pool.options[case.id][i], pool.options[case.id][j]
        cases.append(replace(case, responses=(a, b)))
        spread = torch.sigmoid(block[:, i] - block[:, j]).std(unbiased=False).item()
        scores.append(best_disagreement(block) + 0.01 * spread)  # disagreement first, spread breaks ties
        shown[case.id] = (parse_drug(world, a), parse_drug(world, b))
    return cases, scores, shown


def oracle_scores(
    world: World,
    pool: Pool,
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    cases: list[ReviewCandidate],
) -> list[float]:
    """Per card, for the "oracle" reference only (it reads the world, which no selection rule may):
    pairs of unequal utility score in (1, 2), higher the more confidently the model orders them
    wrongly (σ of the margin by which it prefers the worse one); pairs of equal utility 0.5."""
    prompts = [c.prompt for c in cases]
    margins = score_texts(model, tokenizer, prompts, [c.responses[0] for c in cases]) - score_texts(
        model, tokenizer, prompts, [c.responses[1] for c in cases]
    )
    scores = []
    for case, margin in zip(cases, margins.tolist(), strict=True):
        s = pool.facts[case.id]
        u_a, u_b = (utility(score(world, s.facts, s.target, d)) for d in pool.drugs[case.id])
        wrong_by = -margin if u_a > u_b else margin  # > 0: the model prefers the worse suggestion
        scores.append(0.5 if u_a == u_b else 1 + 1 / (1 + math.exp(-wrong_by)))
    return scores
