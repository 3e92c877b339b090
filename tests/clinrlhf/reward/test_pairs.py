"""Every judgment kind becomes preference pairs; ties and equal ratings carry no order."""

from __future__ import annotations

import pytest

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.text.prompt import render_response
from clinrlhf.world.world import World

PROMPT = "sex female age 30-34 ; problems hypertension pregnant ; allergies none ; labs egfr normal potassium normal ; treat hypertension ->"
A, B, C = (
    "lisinopril 10 mg by mouth once daily",
    "labetalol 100 mg by mouth twice daily",
    "nifedipine 30 mg by mouth once daily",
)


def judgment(kind: str, responses: tuple[str, ...] = (A, B), **kw: object) -> Judgment:
    return Judgment(
        kind=kind,
        card="card-1",
        patient="pt-9f2",
        clinician="clin-3ab",
        prompt=PROMPT,  # type: ignore[arg-type]
        responses=responses,
        **kw,
    )  # type: ignore[arg-type]


def orders(pairs: list[PreferencePair]) -> list[tuple[str, str]]:
    return [(p.chosen, p.rejected) for p in pairs]


def test_pairwise_preferred_beats_the_other() -> None:
    assert orders(pairs_from_judgments([judgment("pairwise", preferred=1)])) == [(B, A)]


def test_pairwise_tie_is_dropped() -> None:
    assert pairs_from_judgments([judgment("pairwise", preferred=None)]) == []


def test_pairs_keep_pseudonyms_prompt_and_source() -> None:
    (pair,) = pairs_from_judgments([judgment("pairwise", preferred=0, source="rlaif")])
    assert (pair.prompt, pair.clinician, pair.patient, pair.source, pair.margin) == (
        PROMPT,
        "clin-3ab",
        "pt-9f2",
        "rlaif",
        0.0,
    )


def test_rating_higher_beats_lower_with_a_margin_per_point() -> None:
    pairs = pairs_from_judgments([judgment("rating", (A, B, C), ratings=(2, 5, 4))], margin_per_point=0.5)
    assert sorted((p.chosen, p.rejected, p.margin) for p in pairs) == sorted(
        [(B, A, 1.5), (C, A, 1.0), (B, C, 0.5)]
    )


def test_rating_equal_or_missing_ratings_are_dropped() -> None:
    pairs = pairs_from_judgments([judgment("rating", (A, B, C), ratings=(3, 3, None))])
    assert pairs == []


def test_rating_count_must_match_responses() -> None:
    with pytest.raises(ValueError, match="card-1"):
        pairs_from_judgments([judgment("rating", (A, B), ratings=(3,))])


def test_cds_accepted_beats_every_other_suggestion() -> None:
    assert orders(pairs_from_judgments([judgment("cds", (A, B, C), accepted=2)])) == [(C, A), (C, B)]


def test_cds_override_makes_the_recommendation_lose_to_each_alternative() -> None:
    assert orders(pairs_from_judgments([judgment("cds", (A, B, C), accepted=None)])) == [(B, A), (C, A)]


def test_cds_override_of_a_lone_suggestion_gives_nothing() -> None:
    assert pairs_from_judgments([judgment("cds", (A,), accepted=None)]) == []


def test_correction_beats_every_shown_response_that_differs() -> None:
    pairs = pairs_from_judgments([judgment("correction", (A, C), correction=C)])
    assert orders(pairs) == [(C, A)]


def test_correction_with_world_compares_by_drug_and_renders_the_sig(world: World) -> None:
    canonical = render_response(world, "nifedipine")
    pairs = pairs_from_judgments(
        [judgment("correction", (A, C), correction="nifedipine 30 mg orally daily")], world=world
    )
    # C names the same drug, so it is not beaten; the correction is written the policy's way
    assert orders(pairs) == [(canonical, A)]


def test_out_of_range_index_is_an_error_naming_the_card() -> None:
    with pytest.raises(ValueError, match="card-1"):
        pairs_from_judgments([judgment("pairwise", preferred=5)])


def test_identical_texts_carry_no_preference() -> None:
    assert pairs_from_judgments([judgment("pairwise", (A, A), preferred=0)]) == []


def test_judgments_of_all_kinds_are_combined_in_order() -> None:
    judgments = [
        judgment("pairwise", preferred=0),
        judgment("rating", ratings=(1, 2)),
        judgment("cds", accepted=0),
        judgment("correction", correction=B),
    ]
    assert orders(pairs_from_judgments(judgments)) == [(A, B), (B, A), (A, B), (B, A)]


def test_cds_override_for_a_clinical_reason_makes_the_recommendation_lose() -> None:
    overridden = judgment("cds", (A, B, C), accepted=None, override_signal="clinical")
    assert orders(pairs_from_judgments([overridden])) == [(B, A), (C, A)]


def test_cds_override_for_a_non_clinical_reason_gives_no_pair() -> None:
    """Patient preference, cost or an order already placed do not say the suggestion was worse."""
    overridden = judgment("cds", (A, B, C), accepted=None, override_signal="non-clinical")
    assert pairs_from_judgments([overridden]) == []
