"""Low-rank adapters for DP reward training: train few coordinates, then fold them back.

Under DP-SGD every trained coordinate receives its own Gaussian noise, while the signal (the
clipped gradient) has the same norm however many coordinates it is spread over; so the noise's
share of each update grows with the number of trained parameters. Low-rank adapters (Hu et al.,
2021, https://arxiv.org/abs/2106.09685) keep each weight matrix W frozen and train W + s·B·A
instead, B (out × r) and A (r × in): a fraction of the coordinates, with every layer still able to
change. Yu et al. (2022, https://arxiv.org/abs/2110.06500) found this the better trade under DP.

`add_lora` wraps a module's nn.Linear layers (GPT-2's Conv1D must already be nn.Linear:
clinrlhf.reward.backbone.prepare_backbone) and freezes everything else in it; `merge_lora` folds
each adapter into its weight, leaving plain nn.Linear layers and every parameter trainable again,
so the saved reward model and PPO's value model copied from it know nothing of adapters. Opacus
computes per-sample gradients for A and B (plain nn.Linear) and skips the frozen base layers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALinear(nn.Module):
    """y = base(x) + scale·up(down(x)); `base` frozen, `up` starting at zero so that training
    starts from exactly the base model."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.down = nn.Linear(base.in_features, rank, bias=False, device=base.weight.device)
        self.up = nn.Linear(rank, base.out_features, bias=False, device=base.weight.device)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))  # as nn.Linear, and the LoRA paper
        nn.init.zeros_(self.up.weight)
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * self.up(self.down(x))

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """The base layer with the adapter folded in: W + scale·B·A, same bias."""
        self.base.weight.add_(self.scale * self.up.weight @ self.down.weight)
        return self.base


def add_lora(module: nn.Module, rank: int, alpha: float) -> list[str]:
    """Freeze every parameter of `module` (in place) and wrap each of its nn.Linear layers in a
    LoRALinear of `rank`; return the qualified names wrapped. Raises if it has none."""
    if rank < 1:
        raise ValueError(f"LoRA rank must be at least 1, got {rank}")
    module.requires_grad_(False)
    names = [name for name, m in module.named_modules() if isinstance(m, nn.Linear) and name]
    if not names:
        raise ValueError(f"{type(module).__name__} has no nn.Linear layer to adapt")
    for name in names:
        base = module.get_submodule(name)
        assert isinstance(base, nn.Linear)
        _set_child(module, name, LoRALinear(base, rank, alpha))
    return names


def merge_lora(module: nn.Module) -> int:
    """Fold every LoRALinear in `module` into a plain nn.Linear (in place) and make all of
    `module`'s parameters trainable again; return how many were merged."""
    names = [name for name, m in module.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        adapter = module.get_submodule(name)
        assert isinstance(adapter, LoRALinear)
        _set_child(module, name, adapter.merged())
    if names:
        module.requires_grad_(True)
    return len(names)


def _set_child(root: nn.Module, name: str, child: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, child)
