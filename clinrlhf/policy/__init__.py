"""The treatment-recommendation policy: a small causal LM and its tokenizer."""

from clinrlhf.policy.model import PolicyConfig, build_policy, load_policy, save_policy
from clinrlhf.policy.tokenizer import build_tokenizer

__all__ = ["PolicyConfig", "build_policy", "build_tokenizer", "load_policy", "save_policy"]
