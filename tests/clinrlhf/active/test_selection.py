"""Choosing cases for review: the most uncertain first, never past a clinician's workload cap."""

from __future__ import annotations

from collections import Counter

import pytest

from clinrlhf.active.selection import (
    STRATEGIES,
    ReviewCandidate,
    proportional_quotas,
    relevant_first,
    select_random,
    select_uncertain,
)

CLINICIANS = [f"dr-{i}" for i in range(5)]


def cases(n: int, groups: int = 1) -> list[ReviewCandidate]:
    return [
        ReviewCandidate(f"card-{i}", f"prompt {i}", (f"a {i}", f"b {i}"), group=f"g{i % groups}")
        for i in range(n)
    ]


def test_the_most_uncertain_cases_come_first() -> None:
    pool = cases(10)
    uncertainty = [0.1, 0.9, 0.3, 0.8, 0.0, 0.5, 0.7, 0.2, 0.6, 0.4]
    chosen = select_uncertain(pool, uncertainty, CLINICIANS, cap=2, reviews_per_card=2, max_cases=4)
    assert [a.case.id for a in chosen] == ["card-1", "card-3", "card-6", "card-8"]


def test_no_clinician_passes_the_cap_and_each_card_gets_distinct_reviewers() -> None:
    pool = cases(40)
    for strategy in (select_uncertain, select_random):
        chosen = strategy(pool, [float(i) for i in range(40)], CLINICIANS, cap=3, reviews_per_card=2, seed=1)
        load = Counter(c for a in chosen for c in a.clinicians)
        assert max(load.values()) <= 3
        assert all(len(set(a.clinicians)) == len(a.clinicians) == 2 for a in chosen)
        # 5 clinicians x 3 cards / 2 reviews per card: 7 cards fit, and the 8th would need two free
        # clinicians where only one has room.
        assert len(chosen) == 7
        assert sum(load.values()) == 14


def test_load_is_spread_evenly() -> None:
    chosen = select_uncertain(cases(100), [1.0] * 100, CLINICIANS, cap=50, reviews_per_card=3, max_cases=20)
    load = Counter(c for a in chosen for c in a.clinicians)
    assert sorted(load.values()) == [12] * 5


def test_the_same_seed_gives_the_same_round_and_another_seed_another() -> None:
    pool, uncertainty = cases(30), [0.5] * 30  # all tied: only the seed orders them
    a = select_uncertain(pool, uncertainty, CLINICIANS, cap=4, reviews_per_card=2, seed=3)
    b = select_uncertain(pool, uncertainty, CLINICIANS, cap=4, reviews_per_card=2, seed=3)
    c = select_uncertain(pool, uncertainty, CLINICIANS, cap=4, reviews_per_card=2, seed=4)
    assert a == b
    assert a != c


def test_random_selection_has_the_same_shape_but_other_cases() -> None:
    pool = cases(60)
    uncertainty = [float(i) for i in range(60)]
    active = select_uncertain(pool, uncertainty, CLINICIANS, cap=4, reviews_per_card=2, seed=0)
    baseline = select_random(pool, None, CLINICIANS, cap=4, reviews_per_card=2, seed=0)
    assert len(active) == len(baseline) == 10
    assert [len(a.clinicians) for a in active] == [len(a.clinicians) for a in baseline]
    assert {a.case.id for a in active} == {f"card-{i}" for i in range(50, 60)}
    assert {a.case.id for a in baseline} != {a.case.id for a in active}
    assert select_random(pool, uncertainty, CLINICIANS, cap=4, reviews_per_card=2, seed=0) == baseline
    assert set(STRATEGIES) == {"uncertainty", "random"}


def test_max_per_group_spreads_a_round_across_groups() -> None:
    pool = cases(12, groups=3)  # groups g0, g1, g2 in turn
    uncertainty = [10.0 if i % 3 == 0 else float(i) for i in range(12)]  # g0 is the most uncertain
    unlimited = select_uncertain(pool, uncertainty, CLINICIANS, cap=9, reviews_per_card=1, max_cases=6)
    limited = select_uncertain(
        pool, uncertainty, CLINICIANS, cap=9, reviews_per_card=1, max_cases=6, max_per_group=2
    )
    assert Counter(a.case.group for a in unlimited)["g0"] == 4
    assert Counter(a.case.group for a in limited) == {"g0": 2, "g1": 2, "g2": 2}


def test_quotas_per_group_keep_a_round_as_varied_as_the_pool() -> None:
    pool = cases(30, groups=3)
    uncertainty = [10.0 + i if i % 3 == 0 else float(i) for i in range(30)]  # g0 the most uncertain
    quotas = proportional_quotas(pool, 6)
    assert quotas == {"g0": 2, "g1": 2, "g2": 2}
    chosen = select_uncertain(pool, uncertainty, CLINICIANS, cap=9, reviews_per_card=1, max_per_group=quotas)
    assert Counter(a.case.group for a in chosen) == {"g0": 2, "g1": 2, "g2": 2}
    # Within each group, the most uncertain: g1's are 28 and 25, g2's 29 and 26, g0's 37 and 34.
    assert {a.case.id for a in chosen} == {f"card-{i}" for i in (27, 24, 28, 25, 29, 26)}
    assert proportional_quotas(cases(10, groups=3), 3) == {"g0": 2, "g1": 1, "g2": 1}
    # A group left out of the mapping has no limit; a zero quota keeps a group out.
    only_g0 = select_uncertain(
        pool, uncertainty, CLINICIANS, cap=9, reviews_per_card=1, max_per_group={"g1": 0, "g2": 0}
    )
    assert {a.case.group for a in only_g0} == {"g0"} and len(only_g0) == 10


def test_explore_mixes_random_cases_into_the_uncertain_order() -> None:
    pool = cases(200)
    uncertainty = [float(i) for i in range(200)]
    top = {f"card-{i}" for i in range(150, 200)}
    greedy = select_uncertain(pool, uncertainty, CLINICIANS, cap=100, reviews_per_card=1, max_cases=50)
    mixed = select_uncertain(
        pool, uncertainty, CLINICIANS, cap=100, reviews_per_card=1, max_cases=50, explore=0.5
    )
    everything_random = select_uncertain(
        pool, uncertainty, CLINICIANS, cap=100, reviews_per_card=1, max_cases=50, explore=1.0
    )
    assert {a.case.id for a in greedy} == top
    in_top = len({a.case.id for a in mixed} & top)
    assert 15 < in_top < 45  # about half from the top, the rest from anywhere (12 of those in the top)
    assert len({a.case.id for a in everything_random} & top) < 25
    assert len({a.case.id for a in mixed}) == 50


def test_relevant_cases_come_first_each_kind_in_uncertainty_order() -> None:
    uncertainty = [0.9, 0.1, 0.5, 0.3, 0.7]
    relevant = [False, True, False, True, True]
    scores = relevant_first(uncertainty, relevant)
    chosen = select_uncertain(cases(5), scores, CLINICIANS, cap=5, reviews_per_card=1)
    assert [a.case.id for a in chosen] == ["card-4", "card-3", "card-1", "card-0", "card-2"]
    assert relevant_first([], []) == []
    assert relevant_first([0.2, 0.4], [False, False]) == [0.2, 0.4]
    with pytest.raises(ValueError, match="relevance flags"):
        relevant_first([0.1], [True, False])
    with pytest.raises(ValueError, match="finite"):
        relevant_first([float("inf")], [True])


def test_a_zero_cap_selects_nothing() -> None:
    assert select_uncertain(cases(5), [1.0] * 5, CLINICIANS, cap=0, reviews_per_card=1) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cap": -1}, "workload cap"),
        ({"reviews_per_card": 0}, "reviews_per_card"),
        ({"reviews_per_card": 6}, "at least as many clinicians"),
        ({"max_cases": -1}, "max_cases"),
        ({"max_per_group": -1}, "max_per_group"),
        ({"max_per_group": {"g0": -1}}, "max_per_group"),
        ({"explore": 1.5}, "explore"),
        ({"uncertainty": [1.0, 2.0]}, "2 uncertainty scores for 5 cases"),
        ({"uncertainty": [float("nan")] * 5}, "finite"),
        ({"uncertainty": None}, "needs an uncertainty"),
        ({"clinicians": ["dr-0", "dr-0", "dr-1"]}, "distinct"),
        ({"cases": cases(2) + cases(1)}, "case ids"),
    ],
)
def test_impossible_inputs_are_refused(kwargs: dict, message: str) -> None:
    args = {
        "cases": cases(5),
        "uncertainty": [1.0] * 5,
        "clinicians": CLINICIANS,
        "cap": 2,
        "reviews_per_card": 2,
    } | kwargs
    if "cases" in kwargs and "uncertainty" not in kwargs:
        args["uncertainty"] = [1.0] * len(args["cases"])
    with pytest.raises(ValueError, match=message):
        select_uncertain(args.pop("cases"), args.pop("uncertainty"), args.pop("clinicians"), **args)


def test_random_refuses_a_negative_cap_too() -> None:
    with pytest.raises(ValueError, match="workload cap"):
        select_random(cases(3), None, CLINICIANS, cap=-2, reviews_per_card=1)
