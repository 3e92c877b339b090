"""A scalar head on a transformers backbone: the reward model, and (copied) PPO's value model."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel


class ScalarHeadModel(nn.Module):
    """Per-token scalars from a backbone's last hidden state.

    The reward of a sequence is the scalar at its last real token; the value model uses every
    position. Both share this class so the value model can start as a copy of the reward model
    (Huang et al., 2024, detail 11).
    """

    def __init__(self, backbone: PreTrainedModel) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, 1)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.head(self.hidden(input_ids, attention_mask, position_ids)).squeeze(-1)  # (B, T)

    def hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The backbone's last hidden state, the head's input. (B, T) -> (B, T, H)"""
        if position_ids is None:
            # Expanded to the batch on purpose: a broadcast (1, T) position tensor gives Opacus a
            # batch-1 per-sample gradient for the position embedding (opacus issue 841).
            position_ids = (
                (attention_mask.long().cumsum(-1) - 1).clamp(min=0) if attention_mask.dim() == 2 else None
            )
        return self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """The index of each row's last attended position. (B, T) -> (B,)"""
    length = attention_mask.shape[-1]
    return length - 1 - attention_mask.long().flip(-1).argmax(-1)  # index of the last 1 in each row
