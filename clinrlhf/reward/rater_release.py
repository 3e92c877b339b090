"""Which per-clinician values a reward run may publish, and under which keys.

A table keyed by the clinicians found in the training pairs publishes who took part: its set of keys
is a function of the data that no noise covers. Under a clinician unit that is exactly what the
guarantee protects, and under a patient unit one patient's pairs can be a clinician's only ones.
So (clinrlhf.feedback.screening_release applies the same rule to the screening's table):

- under a user-level unit ("clinician", "patient") no per-clinician value leaves the run: the
  learned flip rates are post-processing of the DP model, but their keys would not be, and the
  Dawid–Skene accuracies are computed in the clear;
- under an event-level unit ("pair", "judgment") a table is keyed by a roster fixed before
  training (the panel the pipeline enrolled), never by the data: every roster member gets a row, `None` ("no data") where they have
  no value, and a clinician in the data but not on the roster gets none;
- without a roster (a stage trained alone from a snapshot) nothing per-clinician is published.

The accuracies' *values* stay outside the mechanism even when keyed by a roster: the guarantee is
stated conditional on them (docs/privacy.md, and the compliance report's privacy statement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clinrlhf.feedback.screening_release import may_key_by_roster
from clinrlhf.lineage.tracker import Tracker
from clinrlhf.reward.result import RewardResult

FLIP_RATES_ARTIFACT = "raters/flip_rates.json"
ACCURACIES_ARTIFACT = "raters/accuracies.json"


def released_per_clinician(
    values: Mapping[str, float], unit: str, roster: Sequence[str] | None
) -> dict[str, float | None] | None:
    """The table that may be published for `values` (clinician pseudonym -> value), or None when
    nothing per-clinician may be. Keys are exactly `roster`, in its order."""
    if not may_key_by_roster(unit, roster) or not values:
        return None
    assert roster is not None
    return {clinician: values.get(clinician) for clinician in roster}


def log_rater_release(tracker: Tracker, result: RewardResult, roster: Sequence[str] | None) -> list[str]:
    """Log the learned flip rates and the Dawid–Skene accuracies the loss used, as far as
    `released_per_clinician` lets them out, as artifacts only: a metric per clinician would need a
    name per clinician, and a "no data" row has no number. Returns the artifacts logged."""
    logged = []
    for values, artifact in (
        (result.rater_flip_rates, FLIP_RATES_ARTIFACT),
        (result.rater_accuracies, ACCURACIES_ARTIFACT),
    ):
        table = released_per_clinician(values, result.privacy_unit, roster)
        if table is not None:
            tracker.log_dict(table, artifact)
            logged.append(artifact)
    return logged
