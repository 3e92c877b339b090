"""One policy measured for a side-by-side comparison: greedy held-out concordance and unsafe rate with
bootstrap intervals, KL to a reference, and the paired change from a baseline policy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.eval.bootstrap import bootstrap_rates, outcome_flags, outcome_intervals
from clinrlhf.eval.evaluate import Scenario, evaluate_policy, subgroup_of
from clinrlhf.eval.kl import kl_to_reference
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.text.prompt import render_prompt
from clinrlhf.world.world import World


def _interval(iv: Any) -> dict[str, float]:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def evaluate_method(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    world: World,
    scenarios: Sequence[Scenario],
    *,
    reference: PreTrainedModel | None = None,
    kl_samples: int = 0,
    ppo_config: PPOConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy held-out concordance and unsafe rate with 95% bootstrap intervals (overall and by
    subgroup), the outcomes themselves (for paired comparisons), and, given a reference, KL(π‖ref)."""
    started = time.monotonic()
    model.eval()
    evaluation = evaluate_policy(model, tokenizer, world, scenarios)
    groups = [subgroup_of(s.facts) for s in scenarios]
    intervals = outcome_intervals(evaluation.outcomes, groups, seed=seed)
    out: dict[str, Any] = {
        "n": evaluation.n,
        "concordance": _interval(intervals[""]["concordance"]),
        "unsafe_rate": _interval(intervals[""]["unsafe_rate"]),
        "subgroups": {
            key: {metric: _interval(iv) for metric, iv in by_metric.items()}
            for key, by_metric in intervals.items()
            if key
        },
        "outcomes": evaluation.outcomes,
    }
    if reference is not None and kl_samples > 1:
        ppo_config = ppo_config or PPOConfig()
        prompts = sorted({render_prompt(world, s.facts, s.target) for s in scenarios})
        out["kl_heldout"] = kl_to_reference(
            model,
            reference,
            tokenizer,
            prompts,
            samples=kl_samples,
            response_length=ppo_config.response_length,
            temperature=ppo_config.temperature,
            seed=seed,
        )
    out["eval_seconds"] = time.monotonic() - started
    return out


def paired_difference(outcomes: Sequence[Any], baseline: Sequence[Any], seed: int = 0) -> dict[str, Any]:
    """Change in concordance and unsafe rate from `baseline` on the same scenarios, with a paired
    95% percentile-bootstrap interval (the same resampled scenarios for both)."""
    diff = outcome_flags(outcomes) - outcome_flags(baseline)
    concordance, unsafe = bootstrap_rates(diff, seed=seed)
    return {"concordance": _interval(concordance), "unsafe_rate": _interval(unsafe)}
