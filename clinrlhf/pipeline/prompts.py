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

from collections.abc import Sequence

from clinrlhf.feedback import Judgment

PROMPT_SOURCES = ("feedback", "history")


def ppo_prompts(source: str, judgments: Sequence[Judgment], history: Sequence[tuple[str, str]]) -> list[str]:
    """The distinct prompts PPO samples from, sorted so a run's prompt list is reproducible."""
    if source == "feedback":
        return sorted({j.prompt for j in judgments})
    if source == "history":
        return sorted({prompt for prompt, _ in history})
    raise ValueError(f"unknown PPO prompt source {source!r}; choose one of {', '.join(PROMPT_SOURCES)}")
