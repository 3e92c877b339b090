"""k-anonymity of (age band, sex, ZIP3[, race, ethnicity]), checked against a slow, obvious reference."""

from __future__ import annotations

import random
from datetime import date

import pytest

from privacy.deid.kanon import (
    QuasiIdentifiers,
    age_band,
    k_anonymity,
    k_report,
    quasi_identifiers_of_patient,
    suppress_below_k,
)


def _reference_k(records: list[QuasiIdentifiers]) -> int:
    return min((sum(1 for o in records if o == r) for r in records), default=0)


@pytest.mark.parametrize(
    ("age", "band"), [(0, "0-9"), (9, "0-9"), (45, "40-49"), (89, "80-89"), (90, "90+"), (104, "90+")]
)
def test_age_bands_are_ten_years_wide_and_90_up_is_one_band(age: int, band: str) -> None:
    assert age_band(age) == band


def test_k_is_the_smallest_class_as_a_naive_count_says() -> None:
    rng = random.Random(3)
    for _ in range(20):
        records = [
            QuasiIdentifiers(
                age_band(rng.randint(20, 95)), rng.choice(["female", "male"]), rng.choice(["021", "100"])
            )
            for _ in range(rng.randint(1, 60))
        ]
        assert k_anonymity(records) == _reference_k(records)
    assert k_anonymity([]) == 0


def test_suppression_leaves_a_min_k_anonymous_remainder() -> None:
    a, b, c = (QuasiIdentifiers("40-49", "female", z) for z in ("021", "100", "945"))
    records = [a, a, a, b, b, c]
    kept, suppressed = suppress_below_k(records, 3)
    assert kept == [0, 1, 2] and suppressed == [3, 4, 5]
    assert k_anonymity([records[i] for i in kept]) >= 3
    report = k_report(records, 3)
    assert report | {"quasi_identifiers": None} == {
        "quasi_identifiers": None,
        "records": 6,
        "classes": 3,
        "k": 1,
        "min_k": 3,
        "suppressed": 3,
        "k_after_suppression": 3,
    }


def test_quasi_identifiers_read_raw_and_de_identified_patients_alike() -> None:
    raw = {"birthDate": "1931-01-01", "gender": "male", "address": [{"postalCode": "03601"}]}
    done = {
        "gender": "male",
        "extension": [
            {"url": "https://clinrlhf.dev/fhir/StructureDefinition/age-in-years", "valueInteger": 90}
        ],
        "address": [{"postalCode": "000"}],
    }
    today = date(2026, 3, 1)
    # The default rule file keeps race and ethnicity; neither patient records them.
    expected = QuasiIdentifiers("90+", "male", "000", "not-recorded", "not-recorded")
    assert quasi_identifiers_of_patient(raw, today, restricted_zip3=frozenset({"036"})) == expected
    assert quasi_identifiers_of_patient(done, today) == expected


@pytest.mark.parametrize(
    ("gender", "postal"),
    [
        ("John Smith", "０３６０１"),
        ("lindqvist", "٠٣٦٠١"),
        ("fe\u200bmale", "0\u00ad3601"),
        ("male", "０２１３９"),
    ],
)
def test_a_raw_patients_classes_are_those_of_its_de_identified_record(gender: str, postal: str) -> None:
    """Sex and ZIP3 are read through the same value set and normalisation the rule file applies,
    so a planted gender or a ZIP in other digits forms the class the stored record can form."""
    from privacy.deid import deidentify_bundle
    from privacy.deid.ruleset import default_rules

    today = date(2026, 3, 1)
    raw = {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01", "gender": gender}
    raw["address"] = [{"postalCode": postal}]
    bundle = {"resourceType": "Bundle", "entry": [{"resource": raw}]}
    done = deidentify_bundle(bundle, key=b"k" * 32, today=today).bundle["entry"][0]["resource"]
    restricted = default_rules().restricted_zip3
    assert quasi_identifiers_of_patient(
        raw, today, restricted_zip3=restricted
    ) == quasi_identifiers_of_patient(done, today, restricted_zip3=restricted)
    assert quasi_identifiers_of_patient(raw, today, restricted_zip3=restricted).sex in {
        "male",
        "female",
        "unknown",
    }
