"""Where PPO's prompts come from, and what that does to the privacy guarantee of the policy.

PPO reads its prompts in the clear, outside the reward model's DP mechanism. With the feedback
snapshot's prompts (the default, and what every measured run in the README used) the aligned
policy is DP in what the clinicians chose, but not in which patient descriptions the snapshot
holds. With the historical-practice prompts, which the supervised policy was already trained on
in the clear, the feedback reaches the policy only through the DP reward model, so the policy
carries the reward model's (ε, δ) guarantee (conditional, like it, on the rater screening and
weights; see docs/privacy.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from clinrlhf.feedback import Judgment

PROMPT_SOURCES = ("feedback", "history")
BALANCE_RESOLUTION = 4
"""Repeats of a prompt of the commonest band: the finer, the closer integer repeats get to the weights."""


def ppo_prompts(source: str, judgments: Sequence[Judgment], history: Sequence[tuple[str, str]]) -> list[str]:
    """The distinct prompts PPO samples from, sorted so a run's prompt list is reproducible."""
    if source == "feedback":
        return sorted({j.prompt for j in judgments})
    if source == "history":
        return sorted({prompt for prompt, _ in history})
    raise ValueError(f"unknown PPO prompt source {source!r}; choose one of {', '.join(PROMPT_SOURCES)}")


def age_band_of_prompt(prompt: str) -> str:
    """The 20-year band (the fairness gate's, clinrlhf.eval.evaluate.subgroup_of) of the prompt's
    5-year age band; "unknown" for a prompt that states no age."""
    words = prompt.split()
    if "age" not in words or words.index("age") + 1 >= len(words):
        return "unknown"
    stated = words[words.index("age") + 1]
    if stated == "90+":
        return "90plus"
    low = int(stated.split("-")[0]) // 20 * 20 if stated.split("-")[0].isdigit() else -1
    return f"{low}-{min(low + 19, 89)}" if low >= 0 else "unknown"


def balance_by_age_band(prompts: Sequence[str], balance: float) -> list[str]:
    """`prompts`, each repeated so that PPO (which draws uniformly from its list) draws each age band
    in proportion to (its share of the prompts) ** (1 - balance): 0 keeps the prompts as they come,
    1 gives every band an equal share. Why: the oldest bands are a small share of the prompts but
    need the largest moves from the supervised policy (every patient over 75 is CHA2DS2-VASc-high,
    many have eGFR < 30), so a uniform draw spends little of PPO's updates and KL budget on them and
    the age-band gap stays open after alignment (docs/results.md). Only the prompt's own age band is
    read, so no other patient's data enters a prompt's weight."""
    bands = [age_band_of_prompt(p) for p in prompts]
    counts = Counter(bands)
    if not balance or len(counts) < 2:
        return list(prompts)
    weight = {band: n**-balance for band, n in counts.items()}
    lightest = min(weight.values())
    repeats = {band: max(1, round(BALANCE_RESOLUTION * w / lightest)) for band, w in weight.items()}
    return [p for p, band in zip(prompts, bands, strict=True) for _ in range(repeats[band])]
