"""A saved reward model loads back to the same scores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.backbone import prepare_backbone
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.io import load_reward_model, save_reward_model
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair


def test_save_then_load_gives_the_same_rewards(
    tmp_path: Path,
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    heldout_pairs: list[PreferencePair],
) -> None:
    trunk = backbone(seed=5)
    prepare_backbone(trunk)  # the layout training leaves behind
    model = ScalarHeadModel(trunk).eval()
    torch.nn.init.normal_(model.head.weight)
    prompts, responses = [p.prompt for p in heldout_pairs[:6]], [p.rejected for p in heldout_pairs[:6]]
    save_reward_model(model, tokenizer, tmp_path / "rm", metadata={"dp.epsilon": "7.99"})
    loaded, loaded_tokenizer, metadata = load_reward_model(tmp_path / "rm")
    assert metadata == {"dp.epsilon": "7.99"} and not loaded.training
    torch.testing.assert_close(
        score_texts(loaded, loaded_tokenizer, prompts, responses),
        score_texts(model, tokenizer, prompts, responses),
    )
