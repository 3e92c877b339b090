"""The report's agreement summary, against a slow pairwise count. Fleiss' κ itself is tested with
its worked example in tests/clinrlhf/feedback/test_agreement.py."""

from itertools import combinations

import numpy as np
import pytest

from clinrlhf.compliance.agreement import agreement_summary, category_counts, observed_agreement
from clinrlhf.compliance.feedback_stats import feedback_stats
from clinrlhf.pipeline.sample_run import sample_judgments


def test_observed_agreement_equals_counting_agreeing_pairs_of_raters():
    ratings = {"a": ["x", "x", "y"], "b": ["y", "y"], "c": ["x", "y", "z", "x"], "d": ["z"]}
    slow = []
    for chosen in (v for v in ratings.values() if len(v) >= 2):
        pairs = list(combinations(chosen, 2))
        slow.append(sum(p == q for p, q in pairs) / len(pairs))
    assert observed_agreement(category_counts(ratings)) == pytest.approx(sum(slow) / len(slow))


def test_unanimity_in_one_category_has_no_defined_kappa():
    summary = agreement_summary({"a": ["x", "x"], "b": ["x", "x"]})
    assert summary["observed"] == 1.0 and np.isnan(summary["kappa"])


def test_feedback_stats_count_clinicians_volume_and_agreement():
    stats = feedback_stats(sample_judgments(cards=6))
    assert stats["clinicians"] == 3 and stats["judgments"] == 24 and stats["cards"] == 6
    assert stats["by_kind"] == {"cds": 6, "pairwise": 18}
    assert stats["agreement_items"] == 6
    # Half the cards are unanimous, half split 2-1 (one agreeing pair of three).
    assert stats["agreement_observed"] == pytest.approx((1 + 1 / 3) / 2)
    assert stats["cds_accept_rate"] == 1.0
