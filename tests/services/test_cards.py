"""Card building from stored suggestions, apart from HTTP and from any policy."""

from __future__ import annotations

from dataclasses import replace

from fhir.resources.R4B.medicationrequest import MedicationRequest

from clinrlhf.store.models import Card, Suggestion
from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.world import World
from services.cds.cards import build_card, medication_request, relevant_findings

LOW_EGFR = {"33914-3": 20.0}


def stored_card(target: str, drugs: list[str | None], world: World) -> Card:
    card = Card(id="card-1", case_id="case-1", target=target, prompt="p", model_version="m@1")
    card.suggestions = [
        Suggestion(id=f"s{i}", rank=i, drug=d, text=f"{d} {world.drugs[d].sig}" if d else "-> ->")
        for i, d in enumerate(drugs)
    ]
    return card


def test_relevant_findings_are_tier_conditions_and_contraindications_of_the_targets_drugs(
    world: World,
) -> None:
    facts = PatientFacts(age=70, sex="male", conditions=frozenset({"44054006", "59621000"}), labs=LOW_EGFR)
    assert relevant_findings(world, facts, "hypertension") == ["diabetes"]  # egfr does not bar its drugs
    assert relevant_findings(world, facts, "diabetes") == ["egfr_lt_30"]  # it bars metformin


def test_suggestions_that_name_no_drug_are_left_out_and_the_first_named_is_recommended(world: World) -> None:
    facts = PatientFacts(age=50, sex="male", conditions=frozenset({"59621000"}))
    card = build_card(
        world,
        stored_card("hypertension", [None, "amlodipine", "losartan"], world),
        facts,
        "pid-9",
        "http://x/model-card",
    )
    assert [s.uuid for s in card.suggestions] == ["s1", "s2"]
    assert [s.isRecommended for s in card.suggestions] == [True, False]
    assert card.indicator == "info" and card.summary == "Hypertension: consider amlodipine"


def test_a_contraindicated_suggestion_makes_a_warning_that_says_why(world: World) -> None:
    facts = PatientFacts(age=30, sex="female", conditions=frozenset({"59621000", "72892002"}))
    card = build_card(
        world,
        stored_card("hypertension", ["lisinopril", "labetalol"], world),
        facts,
        "p",
        "http://x/model-card",
    )
    assert card.indicator == "warning"
    assert "lisinopril is contraindicated here (normal pregnancy)" in (card.detail or "")
    assert "caution" in card.suggestions[0].label and "caution" not in card.suggestions[1].label


def test_medication_request_is_valid_fhir_with_rxnorm_snomed_and_sig(world: World) -> None:
    resource = medication_request(world, "insulin_glargine", "diabetes", "abc")
    request = MedicationRequest.model_validate(resource)
    assert request.medicationCodeableConcept.coding[0].code == "274783"
    assert request.reasonCode[0].coding[0].code == "44054006"
    assert request.dosageInstruction[0].text == "10 units subcutaneously at bedtime"
    assert request.subject.reference == "Patient/abc"


def test_a_long_summary_is_cut_below_140_characters(world: World) -> None:
    """CDS Hooks: a "One-sentence, <140-character summary" (the model allows 139 at most)."""
    long = replace(world.targets["hypertension"], display="Essential hypertension " * 8)
    wordy = replace(world, targets={**world.targets, "hypertension": long})
    facts = PatientFacts(age=50, sex="male", conditions=frozenset({"59621000"}))
    card = build_card(
        wordy, stored_card("hypertension", ["amlodipine"], wordy), facts, "p", "http://x/model-card"
    )
    assert len(card.summary) == 139
