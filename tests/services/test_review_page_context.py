"""What the review page tells a clinician about one case (services.web.context): the guideline as a
clinician reads it ("First line …; if that is contraindicated …"), each drug to avoid with its
reason, drugs by their names rather than the model's tokens, labs with their units, and which model
made the suggestions and whether it is the version approved for production."""

from __future__ import annotations

from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.world import World
from services.web.context import (
    avoid_views,
    model_view,
    patient_view,
    readable_suggestion,
    tier_views,
)

EGFR, POTASSIUM = "33914-3", "2823-3"


def facts(
    world: World, *findings: str, labs: dict[str, float] | None = None, sex: str = "female"
) -> PatientFacts:
    def codes(resource: str) -> frozenset[str]:
        return frozenset(
            world.findings[k].snomed[0] for k in findings if world.findings[k].resource == resource
        )

    return PatientFacts(
        age=40,
        sex=sex,
        conditions=codes("Condition"),
        allergies=codes("AllergyIntolerance"),
        labs=labs or {EGFR: 92.2, POTASSIUM: 3.9},
    )


def lines(world: World, patient: PatientFacts, target: str) -> list[tuple[str, str, bool]]:
    return [(t.heading, t.choice, t.applies) for t in tier_views(world, patient, target)]


def test_an_unconditional_first_tier_is_first_line_and_the_next_one_its_fallback(world: World) -> None:
    assert lines(world, facts(world), "cystitis") == [
        ("First line", "nitrofurantoin", True),
        ("If nitrofurantoin is contraindicated", "cephalexin", False),
    ]
    renal = facts(world, labs={EGFR: 22.0, POTASSIUM: 4.0})
    assert [applies for *_, applies in lines(world, renal, "cystitis")] == [False, True]


def test_conditional_tiers_read_if_and_the_default_reads_otherwise_first_line(world: World) -> None:
    assert lines(world, facts(world, "diabetes"), "hypertension") == [
        ("If normal pregnancy", "labetalol or nifedipine", False),
        ("If diabetes mellitus type 2", "lisinopril or losartan", True),
        ("Otherwise, first line", "lisinopril, losartan, amlodipine or hydrochlorothiazide", False),
    ]
    assert [h for h, *_ in lines(world, facts(world), "diabetes")] == [
        "If normal pregnancy",
        "Otherwise, first line",
        "If metformin is contraindicated",
    ]
    assert [h for h, *_ in lines(world, facts(world), "pneumonia")][1] == "If amoxicillin is contraindicated"


def test_each_drug_to_avoid_says_why(world: World) -> None:
    patient = facts(world, "pregnant", labs={EGFR: 22.0, POTASSIUM: 5.6})
    avoid = {a.drug: a.reasons for a in avoid_views(world, patient)}
    assert avoid["lisinopril"] == ("normal pregnancy", "potassium > 5.0 mmol/L")
    assert avoid["nitrofurantoin"] == ("eGFR < 30 mL/min/1.73 m²",)
    assert avoid["warfarin"] == ("normal pregnancy",)
    assert "amoxicillin" not in avoid  # no penicillin allergy recorded
    assert avoid_views(world, facts(world)) == ()


def test_labs_carry_their_units_and_medications_their_names(world: World) -> None:
    patient = PatientFacts(
        age=61,
        sex="male",
        labs={EGFR: 92.2, POTASSIUM: 3.9},
        medications=frozenset({world.drugs["insulin_glargine"].rxnorm}),
    )
    view = patient_view(world, patient)
    assert view.labs == (("eGFR", "92.2 mL/min/1.73 m²"), ("potassium", "3.9 mmol/L"))
    assert view.medications == ("insulin glargine",)


def test_a_suggestion_reads_as_a_prescription_not_as_model_tokens(world: World) -> None:
    text = f"insulin_glargine {world.drugs['insulin_glargine'].sig}"
    assert readable_suggestion(world, text) == "insulin glargine 10 units subcutaneously at bedtime"
    assert (
        readable_suggestion(world, "lisinopril 10 mg by mouth once daily")
        == "lisinopril 10 mg by mouth once daily"
    )
    assert "insulin glargine" in (d.display for d in world.drugs.values())


def test_the_page_says_whether_the_model_is_the_production_version() -> None:
    approved = model_view(
        "policy-7@abc123", production="policy-7@abc123", production_label="clinrlhf-policy v3"
    )
    assert approved.approved and "clinrlhf-policy v3" in approved.status
    other = model_view("policy-8@def456", production="policy-7@abc123", production_label="clinrlhf-policy v3")
    assert not other.approved and "not approved for production" in other.status
    assert "clinrlhf-policy v3" in other.status  # names what is in production instead
    none = model_view("policy-8@def456", production=None, production_label=None)
    assert not none.approved and "no version is in production" in none.status
