import random
from collections import Counter
from datetime import date

from fhir.resources.R4B.bundle import Bundle

from clinrlhf.world import load_world, score
from clinrlhf.world.facts import facts_from_bundle
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.practice import historical_choice

W = load_world()


def test_generated_bundles_are_valid_fhir_r4_and_carry_identifiers():
    for patient in generate_patients(W, 20, seed=1, today=date(2026, 1, 1)):
        Bundle.model_validate(patient.bundle)
        person = patient.bundle["entry"][0]["resource"]
        assert person["name"] and person["identifier"] and person["telecom"] and person["birthDate"]
        assert patient.targets, "every generated patient has something to treat"
        assert facts_from_bundle(patient.bundle, on=date(2026, 1, 1)) == patient.facts


def test_generation_is_reproducible_for_a_seed():
    a = generate_patients(W, 5, seed=7, today=date(2026, 1, 1))
    b = generate_patients(W, 5, seed=7, today=date(2026, 1, 1))
    c = generate_patients(W, 5, seed=8, today=date(2026, 1, 1))
    assert [p.bundle for p in a] == [p.bundle for p in b]
    assert [p.bundle for p in a] != [p.bundle for p in c]


def test_historical_practice_is_about_55_percent_concordant_and_often_unsafe():
    rng, outcomes = random.Random(0), Counter()
    for patient in generate_patients(W, 2000, seed=3):
        for target in patient.targets:
            outcomes[score(W, patient.facts, target, historical_choice(W, patient.facts, target, rng))] += 1
    n = sum(outcomes.values())
    assert 0.50 <= outcomes["concordant"] / n <= 0.62
    assert outcomes["unsafe"] / n >= 0.15
