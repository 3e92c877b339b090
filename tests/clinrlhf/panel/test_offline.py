"""The serverless panel: two distinct raters per card, two different suggestions, one seed one set."""

from __future__ import annotations

from collections import defaultdict

from clinrlhf.panel.clinicians import panel_of
from clinrlhf.panel.offline import practice_pair_reviews
from clinrlhf.world.world import World


def test_each_card_has_two_distinct_raters_and_two_different_suggestions(world: World) -> None:
    raters = panel_of(10, 1)
    judgments = practice_pair_reviews(world, raters, 60, seed=4)
    by_card: dict[str, list[str]] = defaultdict(list)
    for j in judgments:
        by_card[j.card].append(j.clinician)
        assert j.kind == "pairwise" and j.responses[0] != j.responses[1]
        assert j.preferred in (0, 1, None)
    assert len(by_card) > 30
    assert all(len(who) == 2 and who[0] != who[1] for who in by_card.values())
    assert {c for who in by_card.values() for c in who} <= {r.id for r in raters}
    assert practice_pair_reviews(world, raters, 60, seed=4) == judgments
    assert practice_pair_reviews(world, raters, 60, seed=5) != judgments
