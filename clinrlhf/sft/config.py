from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SFTConfig:
    epochs: int = 24
    """Passes over the historical-practice examples. 24, not 6: practice follows the guideline for
    only 18% of prescriptions (the rest is habit or a slip), so the few cases that tie a drug to a
    patient's modifiers (eGFR, allergy, pregnancy, stroke risk) are learned last. After 6 epochs the
    policy gave a patient whose habitual drug is wrong the same 6% chance of the right one as anyone
    else; after 24, 13%. Its greedy answers do not change (habit stays the mode), but PPO can only
    reinforce what the policy samples: with the same reward model, held-out concordance after PPO
    went from 0.62 to 0.76 and the unsafe rate from 0.14 to 0.07."""
    batch_size: int = 64
    """Examples per optimizer step."""
    learning_rate: float = 3e-3
    """AdamW step size; high because the model is tiny and the language small."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    seed: int = 0
    """Seeds initialization and shuffling."""
