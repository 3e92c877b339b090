"""Keyed consistency: the same key gives the same pseudonyms and date shifts, in every resource of a
patient and across runs; another key gives others; intervals between a patient's dates survive."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from privacy.deid import date_shift_days, default_rules, deidentify_bundle, pseudonym

SYNTHEA = Path(__file__).parents[4] / "shared" / "data" / "synthea-r4"
TODAY = date(2026, 3, 1)
KEY, OTHER = b"k" * 32, b"o" * 32
DATE_FIELDS = ("onsetDateTime", "effectiveDateTime", "authoredOn", "recordedDate", "date")


@pytest.fixture(scope="module")
def bundle() -> dict:
    path = next(
        p for p in sorted(SYNTHEA.glob("*.json")) if p.name[0].isupper() and "Information" not in p.name
    )
    return json.loads(path.read_bytes())


def _dates(bundle: dict) -> dict[tuple[str, str], str]:
    """(resource id, field) -> value, for every date of the resource types the rules keep."""
    return {
        (e["resource"]["id"], name): e["resource"][name]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] in default_rules().resource_types
        for name in DATE_FIELDS
        if isinstance(e["resource"].get(name), str) and len(e["resource"][name]) >= 10
    }


def _day(value: str) -> date:
    return (
        datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        if "T" in value
        else date.fromisoformat(value)
    )


def test_the_same_key_gives_the_same_output_across_runs(bundle: dict) -> None:
    a, b = (deidentify_bundle(bundle, key=KEY, today=TODAY) for _ in range(2))
    assert json.dumps(a.bundle) == json.dumps(b.bundle) and a.patient == b.patient


def test_another_key_gives_other_pseudonyms_and_another_shift(bundle: dict) -> None:
    a = deidentify_bundle(bundle, key=KEY, today=TODAY)
    b = deidentify_bundle(bundle, key=OTHER, today=TODAY)
    ids_a = {e["resource"]["id"] for e in a.bundle["entry"]}
    ids_b = {e["resource"]["id"] for e in b.bundle["entry"]}
    assert a.patient != b.patient and not ids_a & ids_b
    patient_id = bundle["entry"][0]["resource"]["id"]
    assert date_shift_days(KEY, patient_id) != date_shift_days(OTHER, patient_id)


def test_every_reference_points_at_the_patients_pseudonym(bundle: dict) -> None:
    result = deidentify_bundle(bundle, key=KEY, today=TODAY)
    assert result.patient == pseudonym(KEY, bundle["entry"][0]["resource"]["id"])
    subjects = {
        e["resource"][link]["reference"]
        for e in result.bundle["entry"]
        for link in ("subject", "patient")
        if link in e["resource"]
    }
    assert subjects == {f"Patient/{result.patient}"}


def test_one_shift_per_patient_so_intervals_are_preserved(bundle: dict) -> None:
    raw = _dates(bundle)
    out = deidentify_bundle(bundle, key=KEY, today=TODAY).bundle
    shifted = _dates(out)
    assert len(shifted) == len(raw)
    shifts = set()
    for (raw_id, name), value in raw.items():
        new = shifted[(pseudonym(KEY, raw_id), name)]
        shifts.add((_day(new) - _day(value)).days)
        assert new[10:] == value[10:]  # time of day and zone are kept
    patient_id = bundle["entry"][0]["resource"]["id"]
    assert shifts == {date_shift_days(KEY, patient_id)} and 0 not in shifts
    assert len(raw) > 100  # observations, conditions, prescriptions and notes all moved together
