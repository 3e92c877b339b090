"""One pair, one row: the shared-prefix forward equals two separate forwards, token for token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.backbone import prepare_backbone
from clinrlhf.reward.encode import (
    CHOSEN,
    PAD,
    PROMPT,
    REJECTED,
    as_additive,
    encode_pairs,
    pair_attention_mask,
    pair_position_ids,
    pair_rewards,
    reward_positions,
    segments,
    sequence_ids,
)
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair


def separate(
    model: ScalarHeadModel, tokenizer: PreTrainedTokenizerFast, prompt: str, response: str
) -> torch.Tensor:
    ids = torch.tensor([sequence_ids(tokenizer, prompt, response)])
    return model(ids, torch.ones_like(ids))[0]  # (T,)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("opacus_ready", [False, True])
def test_one_row_per_pair_equals_two_separate_forwards(
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    attn: str,
    opacus_ready: bool,
) -> None:
    trunk = backbone(attn_implementation=attn)
    if opacus_ready:
        prepare_backbone(trunk)
    model = ScalarHeadModel(trunk).eval()
    pairs = train_pairs[:6]
    enc = encode_pairs(tokenizer, pairs)
    width = enc.input_ids.shape[1]
    mask = pair_attention_mask(enc.lengths, width)
    if attn == "eager":
        mask = as_additive(mask, torch.float32)
    with torch.no_grad():
        rewards = pair_rewards(model, enc.input_ids, enc.lengths, eager=attn == "eager")  # (B, 2)
        per_token = model(enc.input_ids, mask, pair_position_ids(enc.lengths, width))  # (B, L)
        for row, pair in enumerate(pairs):
            lp, lc, lr = enc.lengths[row].tolist()
            chosen = separate(model, tokenizer, pair.prompt, pair.chosen)
            rejected = separate(model, tokenizer, pair.prompt, pair.rejected)
            torch.testing.assert_close(per_token[row, : lp + lc], chosen, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(
                per_token[row, lp + lc : lp + lc + lr], rejected[lp:], atol=1e-5, rtol=1e-5
            )
            torch.testing.assert_close(
                rewards[row], torch.stack([chosen[-1], rejected[-1]]), atol=1e-5, rtol=1e-5
            )


def test_eager_and_sdpa_rewards_agree(
    backbone: Callable[..., GPT2Model], tokenizer: PreTrainedTokenizerFast, train_pairs: list[PreferencePair]
) -> None:
    enc = encode_pairs(tokenizer, train_pairs[:5])
    sdpa, eager = (
        ScalarHeadModel(backbone(seed=3)).eval(),
        ScalarHeadModel(backbone(seed=3, attn_implementation="eager")).eval(),
    )
    eager.head.load_state_dict(sdpa.head.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            pair_rewards(eager, enc.input_ids, enc.lengths, eager=True),
            pair_rewards(sdpa, enc.input_ids, enc.lengths),
            atol=1e-5,
            rtol=1e-5,
        )


def test_layout_segments_positions_and_reward_indices() -> None:
    lengths = torch.tensor([[3, 2, 3]])  # prompt 3, chosen+eos 2, rejected+eos 3, then 2 pads
    assert segments(lengths, 10).tolist() == [[PROMPT] * 3 + [CHOSEN] * 2 + [REJECTED] * 3 + [PAD] * 2]
    assert pair_position_ids(lengths, 10).tolist() == [[0, 1, 2, 3, 4, 3, 4, 5, 0, 0]]
    assert reward_positions(lengths).tolist() == [[4, 7]]


def test_mask_is_causal_hides_chosen_from_rejected_and_never_leaves_a_row_empty() -> None:
    lengths = torch.tensor([[3, 2, 3], [2, 4, 1]])
    mask = pair_attention_mask(lengths, 10)[:, 0]  # (B, L, L)
    assert mask.shape == (2, 10, 10)
    assert not mask.triu(1).any()  # nothing attends to the future
    assert mask.any(-1).all()  # every query attends to something
    assert not mask[0, 5:8, 3:5].any()  # rejected queries never see chosen keys
    assert mask[0, 5:8, 0:3].all()  # ... but do see the whole prompt
    assert mask[0, 3:5, 0:5].tril().diagonal(0, -2, -1).all()


def test_rows_longer_than_the_position_table_are_refused(
    tokenizer: PreTrainedTokenizerFast, train_pairs: list[PreferencePair]
) -> None:
    with pytest.raises(ValueError, match="limit is 8"):
        encode_pairs(tokenizer, train_pairs[:2], max_positions=8)


def test_encoding_keeps_margins(
    tokenizer: PreTrainedTokenizerFast, train_pairs: list[PreferencePair]
) -> None:
    from dataclasses import replace

    enc = encode_pairs(tokenizer, [replace(train_pairs[0], margin=1.5), train_pairs[1]])
    assert enc.margins.tolist() == [1.5, 0.0]
    assert enc.input_ids.shape[0] == 2 and enc.lengths.shape == (2, 3)
