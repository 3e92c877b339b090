"""One strategy's rounds: train the reward model on every judgment so far, measure it, choose the
next round's cards and send them to the panel."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.active.best_of_n import best_of_n
from clinrlhf.active.card_scores import design_of, oracle_scores, thompson_cases, uncertainty_of
from clinrlhf.active.ensemble import train_ensemble
from clinrlhf.active.pool import Heldout, Pool
from clinrlhf.active.review import Drugs, composition, review
from clinrlhf.active.selection import (
    GroupLimit,
    proportional_quotas,
    relevant_first,
    select_random,
    select_uncertain,
)
from clinrlhf.active.study_settings import StudySettings
from clinrlhf.panel.clinicians import default_panel
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.world.world import World
from privacy.dp.opacus_config import DPConfig


def run_strategy(
    name: str,
    world: World,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pool: Pool,
    held: Heldout,
    settings: StudySettings,
    seed: int,
    log: Callable[[str], None],
) -> list[dict]:
    panel = {c.id: c for c in default_panel()}
    clinicians = sorted(panel)
    config = RewardConfig(
        epochs=settings.reward_epochs,
        batch_size=settings.reward_batch_size,
        # Replayable noise: the arms are compared paired, from the same first-round reward model,
        # so they share noise draws by seed. A benchmark of selection rules, not a DP release.
        dp=DPConfig(enabled=settings.dp, reproducible_noise=True),
        seed=seed,
    )
    ensemble = name == "thompson" or (name == "active" and settings.uncertainty == "ensemble")
    members = settings.members if ensemble else 1
    shown: Drugs = {}
    first = select_random(
        pool.cases,
        None,
        clinicians,
        cap=settings.cap,
        reviews_per_card=settings.reviews_per_card,
        max_cases=settings.initial_cases,
        seed=seed,
    )
    judgments = review(world, panel, pool, first, seed)
    asked = {a.case.id for a in first}
    added = composition(world, pool, first)
    curve = []
    for round_ in range(settings.rounds + 1):
        started = time.monotonic()
        pairs = pairs_from_judgments(judgments, world=world)
        results = train_ensemble(
            pairs,
            cast(PreTrainedModel, policy.transformer),
            tokenizer,
            config,
            members,
            fraction=settings.ensemble_fraction,
        )
        models = [r.model for r in results]
        measured = best_of_n(world, models[0], tokenizer, held)
        reviews = sum(j.kind == "pairwise" for j in judgments)
        curve.append(
            {
                "round": round_,
                "judgments": reviews,
                "cards": len(asked),
                **added,
                "pairs": len(pairs),
                **measured,
                "epsilon": results[0].epsilon,
                "delta": results[0].delta,
                "seconds": 0.0,
            }
        )
        if round_ < settings.rounds:
            remaining = [c for c in pool.cases if c.id not in asked]
            common = {
                "cap": settings.cap,
                "reviews_per_card": settings.reviews_per_card,
                "seed": seed * 1000 + round_,
            }
            valid = [pool.valid[c.id] for c in remaining]
            if name == "active":
                per_round = settings.cap * len(clinicians) // settings.reviews_per_card
                if settings.uncertainty == "design":
                    done = [c for c in pool.cases if c.id in asked]
                    scores = design_of(models[0], tokenizer, done, remaining, per_round)
                else:
                    scores = uncertainty_of(models, tokenizer, remaining, settings, seed * 1000 + round_)
                if settings.valid_first:
                    scores = relevant_first(scores, valid)
                quotas: GroupLimit = settings.max_per_group
                if settings.stratify:
                    quotas = proportional_quotas(remaining, per_round)
                chosen = select_uncertain(
                    remaining, scores, clinicians, max_per_group=quotas, explore=settings.explore, **common
                )
            elif name == "thompson":  # cards by the ensemble's doubt about its best, pairs by Thompson
                cases, scores, pairs_shown = thompson_cases(
                    world, models, tokenizer, pool, remaining, seed * 1000 + round_
                )
                chosen = select_uncertain(
                    cases, scores, clinicians, max_per_group=settings.max_per_group, **common
                )
                shown |= {a.case.id: pairs_shown[a.case.id] for a in chosen if a.case.id in pairs_shown}
            elif name == "oracle":  # a reference that reads the world: the model's own errors first
                scores = oracle_scores(world, pool, models[0], tokenizer, remaining)
                chosen = select_uncertain(
                    remaining, scores, clinicians, max_per_group=settings.max_per_group, **common
                )
            elif name == "random-valid":  # the ablation: valid cards first, at random within each kind
                flags = [float(v) for v in valid]
                chosen = select_uncertain(
                    remaining, flags, clinicians, max_per_group=settings.max_per_group, **common
                )
            else:
                chosen = select_random(
                    remaining, None, clinicians, max_per_group=settings.max_per_group, **common
                )
            judgments += review(world, panel, pool, chosen, seed, shown)
            asked |= {a.case.id for a in chosen}
            added = composition(world, pool, chosen, shown)
        curve[-1]["seconds"] = round(time.monotonic() - started, 1)
        log(
            f"  {name:>12} round {round_}: {reviews:>5} judgments, {len(pairs):>5} pairs, "
            f"concordance {measured['concordance']:.3f}, unsafe {measured['unsafe_rate']:.3f} "
            f"({curve[-1]['seconds']:.0f} s)"
        )
    return curve
