"""A GPT-2 policy built from config, plus loading of any local Hugging Face causal-LM directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

if TYPE_CHECKING:
    from clinrlhf.policy.lora_config import LoRAConfig

hf_logging.disable_progress_bar()  # our own progress bars own the terminal


@dataclass(frozen=True)
class PolicyConfig:
    n_layer: int = 2
    """Transformer blocks; the task is small, so two suffice."""
    n_embd: int = 64
    """Width of the residual stream."""
    n_head: int = 4
    """Attention heads per block."""
    n_positions: int = 64
    """Longest prompt plus response, in tokens."""


def build_policy(config: PolicyConfig, tokenizer: PreTrainedTokenizerBase) -> GPT2LMHeadModel:
    gpt2 = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        # RLHF needs deterministic log-probs: dropout off everywhere (Huang et al., 2024, detail 9).
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(gpt2)


def save_policy(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_policy(
    path: Path | str, lora: LoRAConfig | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a policy and its tokenizer from any local causal-LM directory (never from a hub).

    With `lora`, the policy comes back as a PEFT model whose only trainable weights are the adapters
    (see clinrlhf.policy.lora, which also gives its frozen reference)."""
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    if lora is not None:
        from clinrlhf.policy.lora import add_lora  # PEFT is only imported by those who use it

        # A PeftModel forwards every attribute to the model it wraps, so it serves as one.
        model = cast(PreTrainedModel, add_lora(model, lora))
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
