"""A word-level tokenizer trained on the policy's own corpus (no download, no unknown words)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}


def build_tokenizer(corpus: Iterable[str]) -> PreTrainedTokenizerFast:
    raw = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS.values()), min_frequency=1)
    raw.train_from_iterator(corpus, trainer=trainer)
    # Left padding: prompts end where generation starts, so a batch shares one start position.
    return PreTrainedTokenizerFast(tokenizer_object=raw, padding_side="left", **SPECIAL_TOKENS)
