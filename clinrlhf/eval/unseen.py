"""Rates on the evaluation scenarios whose prompt no training stage ever read.

A test patient can share the exact rendered prompt (sex, 5-year age band, conditions, target) of a
training example: the figure on those scenarios partly measures recall. The unseen subset is the
one that measures generalisation; the match is exact prompt text, as the policy sees it."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from clinrlhf.eval.evaluate import rates
from clinrlhf.world.scoring import Outcome

UNSEEN = "unseen_prompts"
"""Metric infix: eval.unseen_prompts.<metric> (two parts, so no reader takes it for a subgroup)."""


def unseen_rates(
    prompts: Sequence[str], outcomes: Sequence[Outcome], seen: Collection[str]
) -> dict[str, float]:
    """{concordance, unsafe_rate, n} over the scenarios whose prompt is not in `seen`; n = 0 (and
    rates 0) when every prompt was seen."""
    if len(prompts) != len(outcomes):
        raise ValueError(f"{len(prompts)} prompts but {len(outcomes)} outcomes")
    kept = [o for p, o in zip(prompts, outcomes, strict=True) if p not in seen]
    return rates(kept)


def unseen_metrics(values: dict[str, float], prefix: str = "eval.") -> dict[str, float]:
    """`values` (unseen_rates) as MLflow metrics: eval.unseen_prompts.<metric>."""
    return {f"{prefix}{UNSEEN}.{metric}": value for metric, value in values.items()}
