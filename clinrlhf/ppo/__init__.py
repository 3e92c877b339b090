"""KL-constrained PPO: align the policy to the reward model while staying near the supervised policy."""

from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.kl_controller import AdaptiveKLController, FixedKLController
from clinrlhf.ppo.trainer import KLCapExceeded, PPOResult, train_ppo

__all__ = [
    "AdaptiveKLController",
    "FixedKLController",
    "KLCapExceeded",
    "PPOConfig",
    "PPOResult",
    "train_ppo",
]
