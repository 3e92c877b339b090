"""A pretrained encoder (e.g. BERT-family all-MiniLM-L6-v2) from a local directory, as a reward backbone.

train_reward already makes such a backbone Opacus-ready: freeze_unused_parameters freezes the pooler
(no reward forward reaches it, so it would never get a per-sample gradient), ScalarHeadModel passes
batch-expanded position ids (opacus issue 841), and prepare_backbone unties shared weights. What is
left is the tokenizer: an encoder has no EOS, and the reward is read at the EOS after the response
(clinrlhf.reward.encode), so [SEP] stands in for it.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase


def load_encoder(path: Path | str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The backbone and tokenizer saved in `path` (read offline: nothing is downloaded)."""
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.eos_token is None:
        if tokenizer.sep_token is None:
            raise ValueError(f"the tokenizer in {path} has neither an EOS nor a SEP token to read rewards at")
        tokenizer.eos_token = tokenizer.sep_token
    backbone = AutoModel.from_pretrained(path, local_files_only=True)
    return backbone, tokenizer
