"""Which parameters reward training touches: the top blocks of a supervised trunk, never a
parameter no forward pass reaches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Config, GPT2Model

from clinrlhf.reward.backbone import freeze_lower_layers, freeze_unused_parameters, prepare_backbone
from clinrlhf.reward.model import ScalarHeadModel


def three_blocks() -> GPT2Model:
    return GPT2Model(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=3, n_head=2))


def trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_top_block_final_norm_and_nothing_else_trains() -> None:
    trunk = three_blocks()
    frozen = freeze_lower_layers(trunk, trainable_blocks=1)
    assert {n.split(".")[0] for n in frozen} == {"wte", "wpe", "h"}
    assert {n.split(".")[1] for n in frozen if n.startswith("h.")} == {"0", "1"}
    assert {n.split(".")[0] if not n.startswith("h.") else n[:3] for n in trainable(trunk)} == {"h.2", "ln_f"}


def test_zero_blocks_leaves_the_final_norm_and_all_blocks_trains_everything_but_embeddings() -> None:
    trunk = three_blocks()
    freeze_lower_layers(trunk, trainable_blocks=0)
    assert trainable(trunk) == {"ln_f.weight", "ln_f.bias"}
    trunk = three_blocks()
    assert set(freeze_lower_layers(trunk, trainable_blocks=3)) == {"wte.weight", "wpe.weight"}


def test_a_backbone_without_a_block_list_is_refused() -> None:
    with pytest.raises(ValueError, match="trainable_blocks=None"):
        freeze_lower_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)), trainable_blocks=1)


def test_parameters_no_forward_reaches_are_frozen_before_opacus_sees_them(
    backbone: Callable[..., GPT2Model],
) -> None:
    trunk = backbone()
    trunk.add_module("unused", torch.nn.Linear(4, 4))  # e.g. a pooler the reward never reads
    prepare_backbone(trunk)
    model = ScalarHeadModel(trunk)
    assert freeze_unused_parameters(model) == ["backbone.unused.weight", "backbone.unused.bias"]
    assert set(trainable(model)) == {n for n, _ in model.named_parameters()} - {
        "backbone.unused.weight",
        "backbone.unused.bias",
    }
    assert all(p.grad is None for p in model.parameters())
