"""`RewardConfig.lora_rank`: DP-SGD trains low-rank adapters only (fewer noised coordinates), and
the model returned is a plain one with the adapters folded in. Real Opacus on a tiny GPT-2."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.lora import LoRALinear, add_lora, merge_lora
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import prepare_training
from privacy.dp.opacus_config import DPConfig

torch.set_num_threads(1)

DP = DPConfig(target_epsilon=8.0, target_delta=1e-5, reproducible_noise=True)


def test_a_new_adapter_computes_exactly_the_base_layer_and_merging_keeps_the_function() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    x = torch.randn(3, 6)
    before = base(x).detach()
    adapter = LoRALinear(base, rank=2, alpha=4.0)
    torch.testing.assert_close(adapter(x), before)  # B starts at zero
    with torch.no_grad():
        adapter.up.weight.normal_()
    adapted = adapter(x).detach()
    assert not torch.allclose(adapted, before)
    merged = adapter.merged()
    assert isinstance(merged, nn.Linear)
    torch.testing.assert_close(merged(x), adapted, rtol=1e-5, atol=1e-5)


def test_only_the_adapters_train_and_merging_leaves_a_plain_trainable_module() -> None:
    model = nn.Sequential(nn.Embedding(5, 8), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    wrapped = add_lora(model, rank=2, alpha=2.0)
    assert wrapped == ["1", "3"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"1.down.weight", "1.up.weight", "3.down.weight", "3.up.weight"}
    assert merge_lora(model) == 2
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_a_rank_below_one_or_a_module_without_linear_layers_is_refused() -> None:
    with pytest.raises(ValueError, match="rank"):
        add_lora(nn.Sequential(nn.Linear(2, 2)), rank=0, alpha=1.0)
    with pytest.raises(ValueError, match="no nn.Linear"):
        add_lora(nn.Sequential(nn.LayerNorm(2)), rank=2, alpha=1.0)
    with pytest.raises(ValueError, match="set one"):
        RewardConfig(lora_rank=4, trainable_blocks=1)


def test_dp_training_moves_only_adapters_and_returns_a_model_that_saves_plain(
    train_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    config = RewardConfig(
        epochs=1, units_per_batch=16, rater_buckets=None, lora_rank=2, ema_decay=None, seed=3, dp=DP
    )
    trunk = backbone()
    torch.manual_seed(0)
    run = prepare_training(train_pairs[:200], trunk, tokenizer, config)
    reward = run.trained.reward
    trained = {n for n, p in reward.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("head.") or ".down." in n or ".up." in n for n in trained)
    # The adapters have far fewer coordinates than the weights they adapt: that is the point.
    n_trained = sum(p.numel() for p in reward.parameters() if p.requires_grad)
    assert n_trained < sum(p.numel() for p in reward.parameters()) / 4
    frozen = {n: p.detach().clone() for n, p in reward.named_parameters() if not p.requires_grad}
    for steps, batch in enumerate(run.loader, start=1):
        run.step(batch)
        if steps == 4:
            break
    for n, p in reward.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f"{n} is frozen under LoRA but moved"
    ids = torch.tensor([[3, 4, 5, 6]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        adapted = reward(ids, mask).clone()
    run.finish()
    assert not any(isinstance(m, LoRALinear) for m in reward.modules())
    names = {n for n, _ in reward.named_parameters()}
    assert not any(".down." in n or ".up." in n for n in names)
    with torch.no_grad():
        torch.testing.assert_close(reward(ids, mask), adapted, rtol=1e-4, atol=1e-5)
    before = {n.replace(".base.", "."): p for n, p in frozen.items()}  # the adapted layer's own name again
    moved = [n for n, p in reward.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert moved, "merging folded nothing into the weights"
