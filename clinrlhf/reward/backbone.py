"""Which backbone parameters reward training touches, and in what layout Opacus can handle them."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from clinrlhf.reward.encode import pair_rewards
from clinrlhf.reward.model import ScalarHeadModel
from privacy.dp import conv1d_to_linear, untie_parameters


def prepare_backbone(backbone: PreTrainedModel) -> None:
    """Make a transformers backbone Opacus-ready, in place: own copies of tied weights, and nn.Linear
    for GPT-2's Conv1D. Parameters the caller froze stay frozen."""
    untie_parameters(backbone)
    conv1d_to_linear(backbone)


def freeze_lower_layers(backbone: nn.Module, trainable_blocks: int) -> list[str]:
    """Freeze (in place) the embeddings and all but the top `trainable_blocks` transformer blocks;
    return the names frozen. The blocks are the backbone's first ModuleList (GPT-2's `h`, Llama's
    `layers`); parameters registered after it (the final norm) stay trainable."""
    stacks = [(name, m) for name, m in backbone.named_modules() if isinstance(m, nn.ModuleList)]
    if not stacks:
        raise ValueError(f"{type(backbone).__name__} has no ModuleList of blocks; use trainable_blocks=None")
    stack, blocks = stacks[0]
    first_kept = len(blocks) - trainable_blocks
    frozen, seen_stack = [], False
    for name, param in backbone.named_parameters():
        inside = name.startswith(stack + ".")
        seen_stack |= inside
        below = int(name[len(stack) + 1 :].split(".")[0]) < first_kept if inside else not seen_stack
        if below and param.requires_grad:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


def freeze_unused_parameters(model: ScalarHeadModel, *, eager: bool = False) -> list[str]:
    """Freeze (in place) every trainable parameter that a reward forward pass does not reach, and
    return their names. Opacus' hooks mode expects a per-sample gradient for every trainable
    parameter. The probe is a data-free dummy pair: which parameters get a gradient depends on the
    architecture, not on the tokens."""
    ids, lengths = torch.zeros((1, 3), dtype=torch.long), torch.tensor([[1, 1, 1]])
    model.zero_grad(set_to_none=True)
    pair_rewards(model, ids, lengths, eager=eager).sum().backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    for name in unused:
        model.get_parameter(name).requires_grad_(False)
    model.zero_grad(set_to_none=True)
    return unused
