"""Make a transformers model trainable under Opacus.

GPT-2 computes its attention and MLP projections with `transformers.pytorch_utils.Conv1D`, a linear
layer with a transposed weight, for which Opacus has neither a per-sample gradient sampler (hooks
mode) nor a norm sampler (ghost clipping). Swapping each for an equal `nn.Linear` makes both modes
work. Tied parameters are a second obstacle: a parameter used by two modules gets two per-sample
gradients to combine, which ghost clipping refuses outright; untying gives each use its own copy.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D


def _set_child(root: nn.Module, qualified: str, child: nn.Module) -> None:
    parent_name, _, name = qualified.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, name, child)


def conv1d_to_linear(model: nn.Module) -> list[str]:
    """Replace every Conv1D in `model` (in place) by an nn.Linear computing the same function.

    Returns the qualified names replaced, so `linear_to_conv1d` can undo it before saving.
    """
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, Conv1D)]
    for name, conv in convs:
        weight, bias = conv.weight, conv.bias  # weight (in, out): Conv1D computes x @ W + b
        linear = nn.Linear(weight.shape[0], weight.shape[1], device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight.t())  # nn.Linear computes x @ W.T + b
            linear.bias.copy_(bias)
        linear.weight.requires_grad_(weight.requires_grad)
        linear.bias.requires_grad_(bias.requires_grad)
        _set_child(model, name, linear)
    names = [name for name, _ in convs]
    return names


def linear_to_conv1d(model: nn.Module, names: list[str]) -> None:
    """Undo `conv1d_to_linear` for the given names (in place), e.g. before `save_pretrained`."""
    for name in names:
        linear = model.get_submodule(name)
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"{name} is a {type(linear).__name__}, not an nn.Linear")
        conv = Conv1D(linear.out_features, linear.in_features)
        conv.to(device=linear.weight.device, dtype=linear.weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(linear.weight.t())
            conv.bias.copy_(linear.bias)
        _set_child(model, name, conv)


def untie_parameters(model: nn.Module) -> list[str]:
    """Give every module its own copy of any parameter it shares with another (in place).

    Returns the qualified names that received a copy (the first user keeps the original).
    """
    seen: set[int] = set()
    untied: list[str] = []
    for module_name, module in model.named_modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if id(param) in seen:
                setattr(module, name, nn.Parameter(param.detach().clone(), requires_grad=param.requires_grad))
                untied.append(f"{module_name}.{name}" if module_name else name)
            else:
                seen.add(id(param))
    return untied
