"""Causal-LM loss on prompt -> response, with the prompt masked out of the loss."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.lineage.tracker import NullTracker, Tracker
from clinrlhf.sft.config import SFTConfig

IGNORE = -100  # label value that cross-entropy skips
LOG_EVERY = 10
"""Steps between logged losses: each is a synchronous MLflow write, and the quickstart's SFT takes
about 1,300 steps."""


@dataclass
class SFTResult:
    model: PreTrainedModel
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[tuple[str, str]]
) -> dict[str, torch.Tensor]:
    """Right-padded `prompt response <eos>` rows; labels are IGNORE on the prompt and padding."""
    rows, labels = [], []
    for prompt, response in examples:
        q = tokenizer(prompt)["input_ids"]
        r = tokenizer(response)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(q + r)
        labels.append([IGNORE] * len(q) + r)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([row + [pad] * (width - len(row)) for row in rows]),
        "attention_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows]),
        "labels": torch.tensor([lab + [IGNORE] * (width - len(lab)) for lab in labels]),
    }


def response_loss(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
    # Position t predicts token t+1.
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE
    )


def _trimmed(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch cut to its own longest row: rows are right-padded, so the columns past it are
    padding that the causal mask and the ignored labels make inert, and cost time."""
    width = int(batch["attention_mask"].sum(-1).max())
    return {k: v[:, :width] for k, v in batch.items()}


def train_sft(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[tuple[str, str]],
    config: SFTConfig,
    tracker: Tracker | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SFTResult:
    tracker = tracker or NullTracker()
    torch.manual_seed(config.seed or 0)
    data = encode_examples(tokenizer, examples)
    n = data["input_ids"].shape[0]
    steps_per_epoch = (n + config.batch_size - 1) // config.batch_size
    total = config.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / total)
    generator = torch.Generator().manual_seed(config.seed or 0)
    result, step = SFTResult(model=model), 0
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        epoch_loss = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            loss = response_loss(model, _trimmed({k: v[idx] for k, v in data.items()}))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            epoch_loss += loss.item() * len(idx)
            if step == 1 or step % LOG_EVERY == 0 or step == total:
                tracker.log_metrics({"sft.loss": loss.item()}, step=step)
            if progress:
                progress(step, total)
        result.history.append({"epoch": epoch, "loss": epoch_loss / n})
    model.eval()
    result.metrics = {
        "sft.final_loss": result.history[-1]["loss"],
        "sft.examples": float(n),
        "sft.steps": float(step),
    }
    return result
