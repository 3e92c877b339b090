"""Active learning: send clinicians the cases the reward model is least sure about.

- `uncertainty`: how unsure the reward model is which of two responses is better (an ensemble's
  disagreement, MC dropout, BALD).
- `ensemble`: K reward models that differ by seed and by a subsample of the pairs, trained with the
  project's DP trainer.
- `selection`: which cases go to which clinician, most uncertain first, under a per-clinician
  workload cap; and the random baseline with the same interface.
- `design`: a batch that covers what the reward model has not yet seen, from its features (greedy
  D-optimal design on the head's Gaussian posterior; one model, no ensemble).
- `pairs`: which two of the policy's candidates a card shows (double Thompson sampling over the
  reward model's samples), so the question asked is about the top of the model's list.

benchmarks/active_learning.py measures how many judgments this saves against random selection.
"""

from clinrlhf.active.design import design_scores, fisher_weighted
from clinrlhf.active.ensemble import subsample, train_ensemble
from clinrlhf.active.pairs import best_disagreement, thompson_pair
from clinrlhf.active.selection import (
    STRATEGIES,
    Assignment,
    ReviewCandidate,
    proportional_quotas,
    relevant_first,
    select_random,
    select_uncertain,
)
from clinrlhf.active.uncertainty import (
    METHODS,
    bald,
    ensemble_rewards,
    feature_differences,
    margin_std,
    mc_dropout_rewards,
    pair_uncertainty,
    predictive_entropy,
    preference_probabilities,
    probability_std,
)

__all__ = [
    "METHODS",
    "STRATEGIES",
    "Assignment",
    "ReviewCandidate",
    "bald",
    "best_disagreement",
    "design_scores",
    "ensemble_rewards",
    "feature_differences",
    "fisher_weighted",
    "margin_std",
    "mc_dropout_rewards",
    "pair_uncertainty",
    "predictive_entropy",
    "preference_probabilities",
    "probability_std",
    "proportional_quotas",
    "relevant_first",
    "select_random",
    "select_uncertain",
    "subsample",
    "thompson_pair",
    "train_ensemble",
]
