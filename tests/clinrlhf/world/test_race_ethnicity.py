"""US Core race and ethnicity in the synthetic cohort: present, realistic, deterministic, and added
without moving anything else the generator produces."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections import Counter
from datetime import date

import pytest

from clinrlhf.text.prompt import render_prompt
from clinrlhf.world.facts import (
    CDC_RACE_ETHNICITY,
    US_CORE_ETHNICITY,
    US_CORE_RACE,
    PatientFacts,
    facts_from_bundle,
)
from clinrlhf.world.patients import ETHNICITY_WEIGHTS, RACE_WEIGHTS, generate_patients
from privacy.deid import deidentify_bundle

TODAY = date(2025, 6, 1)
# Digests of 300 patients per seed, taken from the generator before race and ethnicity existed.
BEFORE = {
    0: (
        "71c2793d3835bdfb076f7e513293e9a54ab04aa3e944c13e32150aefecd459ef",
        "ea0cad7c2ec2bad4b5e649341f0e07853e942717bb3fe2aa7bb578c771daed16",
    ),
    7: (
        "651368f3be7a6e06cb6aaeffce321fe51b2700d76e79a8b620cb33a825f960bf",
        "9a39a68ef6adfdc75d163daf00f763b37ef83192cc199eabd4ec46e484d1894a",
    ),
}


def _patient(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


@pytest.mark.parametrize("seed", sorted(BEFORE))
def test_every_other_fact_and_field_is_what_the_generator_made_before(world, seed):
    patients = generate_patients(world, 300, seed, TODAY)
    facts = "".join(
        dataclasses.replace(p.facts, race=None, ethnicity=None).to_json() + "|" + ",".join(p.targets) + "\n"
        for p in patients
    )
    bundles = copy.deepcopy([p.bundle for p in patients])
    for b in bundles:
        assert [e["url"] for e in _patient(b).pop("extension")] == [US_CORE_RACE, US_CORE_ETHNICITY]
    assert hashlib.sha256(facts.encode()).hexdigest() == BEFORE[seed][0]
    assert hashlib.sha256(json.dumps(bundles, sort_keys=True).encode()).hexdigest() == BEFORE[seed][1]


def test_race_and_ethnicity_are_deterministic_per_seed_and_differ_across_seeds(world):
    a = [(p.facts.race, p.facts.ethnicity) for p in generate_patients(world, 200, 3, TODAY)]
    b = [(p.facts.race, p.facts.ethnicity) for p in generate_patients(world, 200, 3, TODAY)]
    c = [(p.facts.race, p.facts.ethnicity) for p in generate_patients(world, 200, 4, TODAY)]
    assert a == b
    assert a != c


def test_the_distribution_is_close_to_the_census_shares(world):
    patients = generate_patients(world, 4000, 11, TODAY)
    race = Counter(p.facts.race for p in patients)
    ethnicity = Counter(p.facts.ethnicity for p in patients)
    for group, share in RACE_WEIGHTS.items():
        # 4 standard errors of a binomial share at n = 4000
        assert race[group] / 4000 == pytest.approx(share, abs=4 * (share * (1 - share) / 4000) ** 0.5 + 1e-3)
    for group, share in ETHNICITY_WEIGHTS.items():
        assert ethnicity[group] / 4000 == pytest.approx(share, abs=4 * (share * (1 - share) / 4000) ** 0.5)


def test_extensions_follow_us_core_with_omb_category_codes(world):
    for p in generate_patients(world, 100, 5, TODAY):
        race, ethnicity = _patient(p.bundle)["extension"]
        codings = [x["valueCoding"] for x in race["extension"] if x["url"] == "ombCategory"]
        assert 1 <= len(codings) <= 2
        assert all(c["system"] == CDC_RACE_ETHNICITY or c["code"] == "UNK" for c in codings)
        assert [x["url"] for x in race["extension"]][-1] == "text"
        assert ethnicity["extension"][0]["url"] == "ombCategory"


def test_reading_the_extensions_back():
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "gender": "female",
                    "birthDate": "1960-01-01",
                    "extension": [
                        {
                            "url": US_CORE_RACE,
                            "extension": [
                                {"url": "ombCategory", "valueCoding": {"code": "2054-5"}},
                                {"url": "ombCategory", "valueCoding": {"code": "2028-9"}},
                                {"url": "detailed", "valueCoding": {"code": "2036-2"}},
                            ],
                        },
                        {
                            "url": US_CORE_ETHNICITY,
                            "extension": [{"url": "ombCategory", "valueCoding": {"code": "2135-2"}}],
                        },
                    ],
                }
            }
        ],
    }
    facts = facts_from_bundle(bundle, on=TODAY)
    assert (facts.race, facts.ethnicity) == ("multiracial", "hispanic")
    _patient(bundle)["extension"][0]["extension"] = [{"url": "ombCategory", "valueCoding": {"code": "UNK"}}]
    _patient(bundle)["extension"].pop()
    facts = facts_from_bundle(bundle, on=TODAY)
    assert (facts.race, facts.ethnicity) == ("unknown", None)


def test_json_round_trip_and_unchanged_json_without_race():
    plain = PatientFacts(age=50, sex="male")
    assert "race" not in plain.to_json()
    full = dataclasses.replace(plain, race="asian", ethnicity="not_hispanic")
    assert PatientFacts.from_json(full.to_json()) == full


def test_race_never_reaches_the_policy_prompt(world):
    for p in generate_patients(world, 60, 2, TODAY):
        stripped = dataclasses.replace(p.facts, race=None, ethnicity=None)
        for target in p.targets:
            prompt = render_prompt(world, p.facts, target)
            assert prompt == render_prompt(world, stripped, target)
            assert p.facts.race not in prompt.split()


def test_what_de_identification_keeps_today(world):
    # The default rule file (2.1.0) keeps the OMB categories of US Core race and ethnicity
    # (`keepExtension` on Patient.extension) and drops their text, so the stored record carries race
    # and ethnicity for a fairness audit; prompts built from it still never show them.
    p = generate_patients(world, 1, 1, TODAY)[0]
    deid = deidentify_bundle(p.bundle, key=b"k" * 32, today=TODAY).bundle
    facts = facts_from_bundle(deid, on=TODAY)
    assert p.facts.race is not None and p.facts.ethnicity is not None
    assert (facts.race, facts.ethnicity) == (p.facts.race, p.facts.ethnicity)
    kept = [e for e in _patient(deid)["extension"] if e["url"] in (US_CORE_RACE, US_CORE_ETHNICITY)]
    assert [e["url"] for e in kept] == [US_CORE_RACE, US_CORE_ETHNICITY]
    assert all(part["url"] == "ombCategory" for e in kept for part in e["extension"])
    assert all(set(part["valueCoding"]) == {"system", "code"} for e in kept for part in e["extension"])
    assert dataclasses.replace(p.facts, race=None, ethnicity=None).conditions == facts.conditions
    for target in p.targets:
        assert render_prompt(world, facts, target) == render_prompt(world, p.facts, target)


def test_de_identification_keeps_race_for_every_generated_patient(world):
    for p in generate_patients(world, 200, 6, TODAY):
        facts = facts_from_bundle(deidentify_bundle(p.bundle, key=b"k" * 32, today=TODAY).bundle, on=TODAY)
        assert (facts.race, facts.ethnicity) == (p.facts.race, p.facts.ethnicity)
