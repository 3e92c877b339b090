from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SFTConfig:
    epochs: int = 24
    """Passes over the historical-practice examples (why 24: docs/results.md, "How the defaults were
    chosen")."""
    batch_size: int = 64
    """Examples per optimizer step."""
    learning_rate: float = 3e-3
    """AdamW step size; high because the model is tiny and the language small."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    seed: int | None = None
    """Seeds initialization and shuffling. None: derived from the pipeline seed (clinrlhf.pipeline.seeds) in a pipeline run, 0 when trained alone."""
