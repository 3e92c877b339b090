"""PPO with LoRA adapters: only the adapters learn, the base under them (the reference) never moves,
and merging gives back a plain model that computes what the adapted one did."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from clinrlhf.policy import save_policy
from clinrlhf.policy.lora import LoRAConfig, add_lora, frozen_reference, is_adapter_weight, merge_lora
from clinrlhf.policy.model import load_policy
from clinrlhf.ppo import PPOConfig, train_ppo

if TYPE_CHECKING:
    from conftest import Task

CONFIG = PPOConfig(
    steps=4,
    batch_size=16,
    mini_batches=2,
    ppo_epochs=2,
    lr=3e-3,  # adapters start at zero and are few: they take larger steps than full fine-tuning
    response_length=16,
    final_kl_samples=16,
)


def _logits(model: torch.nn.Module, task: Task) -> torch.Tensor:
    ids = task.tokenizer(task.prompts[:4], return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]).logits


def test_ppo_with_lora_trains_only_the_adapters_against_the_frozen_base(task: Task) -> None:
    base, _, value = task.models()
    before = _logits(base, task)
    policy = add_lora(base, LoRAConfig(rank=4, alpha=8))
    reference = frozen_reference(policy)
    weights = {k: v.clone() for k, v in policy.state_dict().items()}
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(is_adapter_weight(n) for n in trainable)

    result = train_ppo(policy, reference, value, task.reward, task.tokenizer, task.prompts, CONFIG)

    after = policy.state_dict()
    moved = {k for k in weights if not torch.equal(weights[k], after[k])}
    assert moved and all(is_adapter_weight(k) for k in moved)  # the adapters learned, nothing else did
    assert torch.allclose(_logits(reference, task), before)  # the reference is still the base
    assert not torch.allclose(_logits(policy, task), before, atol=1e-4)
    assert 0 < result.final_kl < CONFIG.kl_cap
    assert all(torch.isfinite(torch.tensor(list(row.values()))).all() for row in result.history)


def test_a_merged_policy_saves_and_loads_as_a_plain_model(task: Task, tmp_path: Path) -> None:
    policy = add_lora(task.models()[0], LoRAConfig(rank=2, alpha=4))
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_()  # as if trained: B = 0 would merge to the base unchanged
    adapted = _logits(policy, task)
    save_policy(merge_lora(policy), task.tokenizer, tmp_path / "merged")
    loaded, _ = load_policy(tmp_path / "merged")
    assert not any(is_adapter_weight(n) for n in loaded.state_dict())
    assert torch.allclose(_logits(loaded, task), adapted, atol=1e-5)


def test_load_policy_adds_adapters_to_any_local_causal_lm(task: Task, tmp_path: Path) -> None:
    save_policy(task.models()[0], task.tokenizer, tmp_path / "base")
    policy, _ = load_policy(tmp_path / "base", lora=LoRAConfig(rank=4, target_modules=("c_attn", "c_proj")))
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    total = sum(p.numel() for p in policy.parameters())
    assert trainable and all(is_adapter_weight(n) for n in trainable)
    assert any("mlp.c_proj" in n for n in trainable)  # the target modules were honoured
    assert sum(p.numel() for n, p in policy.named_parameters() if p.requires_grad) < total / 5
    with pytest.raises(TypeError, match="LoRA"):
        frozen_reference(task.models()[0])
