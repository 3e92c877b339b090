"""LoRA settings, apart from clinrlhf.policy.lora so that reading a config never imports PEFT."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 8
    """Rank r of each adapter's update B @ A."""
    alpha: int = 16
    """The update is scaled by alpha / rank, so changing the rank need not change the step size."""
    target_modules: tuple[str, ...] | None = None
    """Names of the layers to adapt; None takes PEFT's default for the architecture (GPT-2: c_attn)."""
    dropout: float = 0.0
    """Off by default: PPO needs the same log-probs at rollout and update (Huang et al., 2024, detail 9)."""

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError("the LoRA rank must be at least 1")
