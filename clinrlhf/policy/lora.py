"""LoRA adapters (Hu et al., 2021, https://arxiv.org/abs/2106.09685) through PEFT, for policies too
large to fine-tune whole: PPO trains only small low-rank matrices beside the frozen weights, and the
same frozen weights, with the adapters switched off, are the reference. One copy of the base serves
both, which halves the memory of the two largest models PPO holds.

    policy, tokenizer = load_policy("models/my-causal-lm", lora=LoRAConfig(rank=16))
    reference = frozen_reference(policy)
    result = train_ppo(policy, reference, value_model, reward_fn, tokenizer, prompts, config)
    save_policy(merge_lora(result.policy), tokenizer, out)   # a plain model again, for serving
"""

from __future__ import annotations

from typing import Any

import peft
from torch import nn
from transformers import PreTrainedModel

from clinrlhf.policy.lora_config import LoRAConfig

__all__ = ["LoRAConfig", "add_lora", "frozen_reference", "is_adapter_weight", "merge_lora"]


def add_lora(model: PreTrainedModel, config: LoRAConfig) -> peft.PeftModel:
    """`model` with adapters on `config.target_modules`; every other weight is frozen. The adapters
    start as zero updates (B = 0), so the result computes exactly what `model` did."""
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules) if config.target_modules is not None else None,
        task_type=peft.TaskType.CAUSAL_LM,
    )
    return peft.get_peft_model(model, lora)


def is_adapter_weight(name: str) -> bool:
    return "lora_" in name


class FrozenReference(nn.Module):
    """The base model under a LoRA policy, adapters switched off for every call: the reference policy
    without a second copy of the weights."""

    _policy: peft.PeftModel

    def __init__(self, policy: peft.PeftModel) -> None:
        super().__init__()
        # Deliberately not a registered submodule: the trainer freezes the reference with
        # `requires_grad_(False)`, which must not reach the policy's adapters.
        object.__setattr__(self, "_policy", policy)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self._policy.disable_adapter():
            return self._policy(*args, **kwargs)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """The base weights only: what the reference computes with, and what a PPO checkpoint's run
        fingerprint must name (the adapters change every step; the reference does not)."""
        weights = self._policy.state_dict(*args, **kwargs)
        return {name: tensor for name, tensor in weights.items() if not is_adapter_weight(name)}


def frozen_reference(policy: nn.Module) -> FrozenReference:
    return FrozenReference(_peft(policy))


def merge_lora(policy: nn.Module) -> PreTrainedModel:
    """The base with the adapters folded into its weights: a plain model that `save_policy` writes and
    `load_policy` reads like any other. Modifies the base in place, so call it once training is done."""
    return _peft(policy).merge_and_unload()


def _peft(policy: nn.Module) -> peft.PeftModel:
    if not isinstance(policy, peft.PeftModel):
        raise TypeError(f"expected a policy with LoRA adapters (see add_lora), got {type(policy).__name__}")
    return policy
