"""Differential privacy for training on clinicians' judgments: accounting, and the guarantee it buys.

Pure functions over Opacus' accountants (PRV by default, RDP beside it), a typed statement of what
a run guarantees, user-level DP-SGD's pure steps (contribution bounding, sampling rate over units,
per-unit gradient sums), a Rényi privacy filter over the runs of a deployment, and the layer
conversions GPT-2 needs before Opacus can compute per-sample gradients.
"""

from privacy.dp.accounting import ACCOUNTANTS, Accountant, calibrate_noise, epsilon_for
from privacy.dp.compat import conv1d_to_linear, linear_to_conv1d, untie_parameters
from privacy.dp.guarantee import PRIVACY_UNITS, PrivacyGuarantee, PrivacyUnit
from privacy.dp.renyi_filter import (
    Budget,
    BudgetExceededError,
    Mechanism,
    check_budget,
    check_delta_for_units,
    composed_epsilon,
    filter_epsilon,
)
from privacy.dp.units import bound_contributions, sum_by_unit, unit_sample_rate

__all__ = [
    "ACCOUNTANTS",
    "PRIVACY_UNITS",
    "Accountant",
    "Budget",
    "BudgetExceededError",
    "Mechanism",
    "PrivacyGuarantee",
    "PrivacyUnit",
    "bound_contributions",
    "calibrate_noise",
    "check_budget",
    "check_delta_for_units",
    "composed_epsilon",
    "conv1d_to_linear",
    "epsilon_for",
    "filter_epsilon",
    "linear_to_conv1d",
    "sum_by_unit",
    "unit_sample_rate",
    "untie_parameters",
]
