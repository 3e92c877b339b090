"""GPT-2 made Opacus-ready: Conv1D becomes nn.Linear without changing the function; ties are cut."""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model
from transformers.pytorch_utils import Conv1D

from privacy.dp import conv1d_to_linear, linear_to_conv1d, untie_parameters


def _gpt2(**kw: int) -> GPT2Model:
    torch.manual_seed(0)
    return GPT2Model(GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4, **kw)).eval()


def test_conv1d_to_linear_keeps_the_hidden_states() -> None:
    model, ids = _gpt2(), torch.randint(0, 50, (3, 11))
    before = model(input_ids=ids).last_hidden_state
    names = conv1d_to_linear(model)
    assert len(names) == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    assert not any(isinstance(m, Conv1D) for m in model.modules())
    torch.testing.assert_close(model(input_ids=ids).last_hidden_state, before)


def test_linear_to_conv1d_undoes_the_conversion() -> None:
    model, ids = _gpt2(), torch.randint(0, 50, (2, 7))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    linear_to_conv1d(model, conv1d_to_linear(model))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value)
    assert isinstance(model.h[0].attn.c_attn, Conv1D)
    model(input_ids=ids)


def test_conversion_keeps_frozen_parameters_frozen() -> None:
    model = _gpt2()
    model.h[0].mlp.c_fc.weight.requires_grad_(False)
    conv1d_to_linear(model)
    assert isinstance(model.h[0].mlp.c_fc, nn.Linear)
    assert not model.h[0].mlp.c_fc.weight.requires_grad and model.h[0].mlp.c_fc.bias.requires_grad


def test_untie_gives_the_lm_head_its_own_copy() -> None:
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=1, n_head=4))
    assert lm.lm_head.weight is lm.transformer.wte.weight
    untied = untie_parameters(lm)
    assert untied == ["lm_head.weight"]
    assert lm.lm_head.weight is not lm.transformer.wte.weight
    torch.testing.assert_close(lm.lm_head.weight, lm.transformer.wte.weight)
    assert len(list(lm.parameters())) == len(list(lm.named_parameters(remove_duplicate=False)))


def test_untie_leaves_an_untied_model_alone() -> None:
    assert untie_parameters(_gpt2()) == []
