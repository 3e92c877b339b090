"""Dawid–Skene EM over pairwise preferences: hand-computed steps, a tiny textbook case, and recovery
of known rater accuracies from simulated labels."""

from __future__ import annotations

import numpy as np
import pytest

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.reliability import (
    Labels,
    OutlierConfig,
    dawid_skene,
    flag_outliers,
    item_posteriors,
    log_likelihood,
    preference_labels,
    rater_accuracies,
    robust_z,
)


def _labels(rows: list[tuple[int, int, int]], n_items: int, raters: tuple[str, ...]) -> Labels:
    item, rater, label = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    items = tuple((f"card-{i}", "a", "b") for i in range(n_items))
    return Labels(items, raters, item, rater, label)


def test_e_step_matches_the_hand_computed_posterior():
    # Raters of accuracy 0.9 and 0.8 say "second"; one of 0.6 says "first":
    # odds = (0.9/0.1) (0.8/0.2) (0.4/0.6) = 24, so P(second) = 24/25.
    labels = _labels([(0, 0, 1), (0, 1, 1), (0, 2, 0)], 1, ("x", "y", "z"))
    q = item_posteriors(labels, np.array([0.9, 0.8, 0.6]))
    assert q[0] == pytest.approx(24 / 25)


def test_m_step_is_the_smoothed_expected_agreement():
    labels = _labels([(0, 0, 1), (1, 0, 0), (2, 0, 1)], 3, ("x",))
    # agreement with posteriors 0.9, 0.3 (label 0 agrees with prob 0.7), 0.5: 2.1; (2.1 + 1) / (3 + 2)
    accuracy = rater_accuracies(labels, np.array([0.9, 0.3, 0.5]), pseudo_count=1.0)
    assert accuracy[0] == pytest.approx(3.1 / 5)


def test_log_likelihood_of_one_item_by_hand():
    labels = _labels([(0, 0, 1), (0, 1, 0)], 1, ("x", "y"))
    # ½ (0.9 · 0.3) + ½ (0.1 · 0.7)
    assert log_likelihood(labels, np.array([0.9, 0.7])) == pytest.approx(np.log(0.5 * 0.27 + 0.5 * 0.07))


def test_tiny_panel_three_agree_one_inverts():
    # Five items, three raters who always agree, and one who always says the opposite. EM converges
    # to items following the three and, in the limit, the contrarian's accuracy (0 + s) / (5 + 2s).
    rows = []
    for i in range(5):
        truth = i % 2
        rows += [(i, r, truth) for r in range(3)] + [(i, 3, 1 - truth)]
    result = dawid_skene(_labels(rows, 5, ("a", "b", "c", "d")))
    assert result.converged
    assert result.accuracy["d"] == pytest.approx(1 / 7, abs=0.01)
    for r in "abc":
        assert result.accuracy[r] == pytest.approx(6 / 7, abs=0.01)
    assert np.allclose(result.posterior, [0, 1, 0, 1, 0], atol=0.01)


def test_recovers_known_accuracies_from_simulated_labels():
    rng = np.random.default_rng(0)
    truth_acc = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.9, 0.15])
    n_items, per_item = 3000, 3
    truth = rng.integers(0, 2, n_items)
    rows = []
    for i in range(n_items):
        for r in rng.choice(len(truth_acc), per_item, replace=False):
            correct = rng.random() < truth_acc[r]
            rows.append((i, int(r), int(truth[i] if correct else 1 - truth[i])))
    raters = tuple(f"r{k}" for k in range(len(truth_acc)))
    result = dawid_skene(_labels(rows, n_items, raters))
    estimated = np.array([result.accuracy[r] for r in raters])
    assert np.max(np.abs(estimated - truth_acc)) < 0.04
    # The posteriors recover the true preference of most items.
    assert np.mean((result.posterior > 0.5) == truth) > 0.9
    flagged = flag_outliers(result)
    assert [f.rater for f in flagged] == ["r9"]
    assert "accuracy" in flagged[0].reasons[0]


def _j(card: str, clinician: str, preferred: int | None, responses=("x drug", "y drug"), **kw) -> Judgment:
    return Judgment(
        kind=kw.pop("kind", "pairwise"),
        card=card,
        patient="p",
        clinician=clinician,
        prompt="prompt",
        responses=responses,
        preferred=preferred,
        **kw,
    )


def test_labels_from_judgments_orient_by_sorted_text_and_drop_ties_and_singletons():
    judgments = [
        _j("c1", "a", 0),  # prefers "x drug": the first in sorted order -> label 0
        _j("c1", "b", 0, responses=("y drug", "x drug")),  # prefers "y drug" -> label 1
        _j("c2", "a", None),  # tie
        _j("c2", "b", 1),
        _j("c3", "a", 1),  # only one label on c3
        _j("c1", "m", 1, source="ai"),  # another source never mixes in
    ]
    labels = preference_labels(judgments)
    assert labels.items == (("c1", "x drug", "y drug"),)
    assert labels.raters == ("a", "b")
    assert labels.label.tolist() == [0, 1]
    assert len(preference_labels(judgments, min_labels_per_item=1)) == 4


def test_robust_z_and_the_label_floor():
    z = robust_z({"a": 1.0, "b": 2.0, "c": 3.0, "d": -10.0})
    # median 1.5, MAD 1.0 -> z = 0.6745 (x - 1.5)
    assert z["d"] == pytest.approx(0.6745 * -11.5)
    labels = _labels([(i, r, (i + (r == 2)) % 2) for i in range(5) for r in range(3)], 5, ("a", "b", "c"))
    result = dawid_skene(labels)
    assert result.accuracy["c"] < 0.5
    assert flag_outliers(result, OutlierConfig(min_labels=6)) == []
    assert [f.rater for f in flag_outliers(result, OutlierConfig(min_labels=5))] == ["c"]
