"""Supervised fine-tuning: the first policy imitates historical practice, errors and all."""

from clinrlhf.sft.config import SFTConfig
from clinrlhf.sft.trainer import SFTResult, encode_examples, train_sft

__all__ = ["SFTConfig", "SFTResult", "encode_examples", "train_sft"]
