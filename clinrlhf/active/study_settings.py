"""The active-learning study's settings: the full run and a quick one that fits a few minutes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

TODAY = date(2025, 6, 1)
DEID_KEY = b"active-learning-benchmark"


@dataclass(frozen=True)
class StudySettings:
    history_patients: int = 3000
    """Historical-practice patients the supervised policy imitates (the pipeline's default)."""
    pool_patients: int = 3000
    """Synthetic feedback patients: one card per (patient, target) with two distinct suggestions."""
    validation_patients: int = 1500
    """Validation-cohort patients whose scenarios measure the best-of-n policy (the study chooses an
    acquisition rule, so it never reads the test cohort)."""
    policy_layers: int = 2
    policy_width: int = 64
    sft_epochs: int = 24
    """The pipeline's default (clinrlhf.sft.config.SFTConfig.epochs): fewer leave the policy blind to
    the patient-specific cases, and the best-of-n candidates with little to choose from."""
    candidates: int = 16
    """n of best-of-n: samples of the supervised policy per held-out scenario."""
    rounds: int = 5
    """Rounds of selection after the first, random one."""
    cap: int = 50
    """Most cards one clinician reviews in one round (the workload cap)."""
    reviews_per_card: int = 2
    initial_cases: int = 250
    """Cards of the first round, chosen at random for both strategies."""
    reward_epochs: int = 10
    reward_batch_size: int = 256
    dp: bool = True
    uncertainty: str = "ensemble"
    """"ensemble" (K DP reward models), "mc-dropout" (one model, dropout on at scoring) or "design"
    (one model: greedy D-optimal batches from its features, clinrlhf.active.design; `method` unused)."""
    method: str = "std"
    """How the samples become one score per card (clinrlhf.active.uncertainty.METHODS)."""
    members: int = 3
    ensemble_fraction: float = 0.5
    """Share of the cases each ensemble member after the first trains on (the first trains on all)."""
    passes: int = 16
    dropout: float = 0.1
    explore: float = 0.0
    """Share of each active round chosen at random instead (select_uncertain's `explore`)."""
    max_per_group: int | None = None
    """Most cards of one target condition per round (batch diversity); None: no limit."""
    stratify: bool = False
    """Active rounds take the most uncertain cards within each target, in proportion to the targets'
    shares of the remaining pool (clinrlhf.active.selection.proportional_quotas)."""
    seeds: tuple[int, ...] = (0,)
    target: float = 0.70
    valid_first: bool = True
    """Active rounds take cards whose two suggestions are both valid prescriptions first (the only
    comparisons best-of-n ever makes; clinrlhf.active.selection.relevant_first), then the rest."""
    strategies: tuple[str, ...] = ("random", "active", "random-valid")


FULL = StudySettings()
QUICK = StudySettings(
    history_patients=1000,
    pool_patients=300,
    validation_patients=150,
    policy_layers=1,
    policy_width=32,
    sft_epochs=20,
    candidates=4,
    rounds=3,
    cap=8,
    initial_cases=40,
    reward_epochs=3,
    members=2,
    seeds=(0,),
    target=0.5,
)
