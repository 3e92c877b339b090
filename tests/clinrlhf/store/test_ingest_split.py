"""Splitting FHIR resources into one Bundle per Patient, by reference, and ingesting them."""

from __future__ import annotations

import copy
from datetime import date

from clinrlhf.store import transaction
from clinrlhf.store.cases import unreadable_reason
from clinrlhf.store.ingest import IngestSummary, ingest_patient_bundles, split_bundle, split_by_patient
from clinrlhf.world.facts import facts_from_bundle
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

TODAY = date(2026, 3, 1)


def resources_of(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]]


def as_bulk_export(bundle: dict, base: str = "") -> list[dict]:
    """Bulk Data style: references are `Patient/<id>` (optionally absolute), no fullUrls."""
    out = copy.deepcopy(resources_of(bundle))
    pid = out[0]["id"]
    for r in out[1:]:
        for link in ("subject", "patient"):
            if link in r:
                r[link] = {"reference": f"{base}Patient/{pid}"}
    return out


def test_a_transaction_bundle_with_two_patients_splits_into_two(world: World) -> None:
    one, two = generate_patients(world, 2, seed=8, today=TODAY)
    merged = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": two.bundle["entry"] + one.bundle["entry"] + [{"resource": {"resourceType": "Organization"}}],
    }
    bundles, unlinked = split_bundle(merged)
    assert dict(unlinked) == {"Organization": 1}
    facts = sorted((facts_from_bundle(b, on=TODAY) for b in bundles), key=lambda f: f.to_json())
    assert facts == sorted([one.facts, two.facts], key=lambda f: f.to_json())


def test_bulk_ndjson_resources_group_by_relative_or_absolute_patient_reference(world: World) -> None:
    one, two = generate_patients(world, 2, seed=9, today=TODAY)
    pooled = as_bulk_export(one.bundle) + as_bulk_export(two.bundle, base="https://ehr.example/fhir/")
    pooled.sort(key=lambda r: r["resourceType"])  # as if read from Patient.ndjson, Condition.ndjson, ...
    bundles, unlinked = split_by_patient(pooled)
    assert not unlinked and len(bundles) == 2
    assert sorted(facts_from_bundle(b, on=TODAY).to_json() for b in bundles) == sorted(
        [one.facts.to_json(), two.facts.to_json()]
    )


def test_a_bundle_without_patients_yields_nothing(world: World) -> None:
    bundles, unlinked = split_bundle(
        {
            "resourceType": "Bundle",
            "entry": [
                {"resource": {"resourceType": "Practitioner", "id": "p"}},
                {"resource": {"resourceType": "Location"}},
            ],
        }
    )
    assert bundles == [] and dict(unlinked) == {"Practitioner": 1, "Location": 1}


def test_ingest_stores_each_case_once_and_counts_what_it_drops(sessions, world: World) -> None:
    patients = generate_patients(world, 3, seed=10, today=TODAY)
    bundles = [p.bundle for p in patients]
    bundles[0]["entry"].append({"resource": {"resourceType": "Encounter", "subject": {"reference": "x"}}})
    broken = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "z"}}]}
    with transaction(sessions) as session:
        first = ingest_patient_bundles(
            session, [*bundles, broken], key=b"k" * 32, today=TODAY, summary=IngestSummary()
        )
        second = ingest_patient_bundles(session, bundles, key=b"k" * 32, today=TODAY, summary=IngestSummary())
    assert first.to_dict() == {
        "cases": 3,
        "duplicates": 0,
        "skipped": {"unreadable-patient": 1},
        "skips": [
            {"source": "input", "patient": 4, "reason": "the Patient has neither a birth date nor an age"}
        ],
        "dropped": {"Encounter": 1},
    }
    assert (second.cases, second.duplicates) == (0, 3)


def test_an_unreadable_reason_never_quotes_a_library_message() -> None:
    quoting = ValueError("Invalid isoformat string: 'Quibbleton'")
    assert unreadable_reason(quoting, "de-identification") == "de-identification failed (ValueError)"
    ours = ValueError("expected exactly one Patient in the Bundle, found 2")
    assert unreadable_reason(ours, "de-identification") == "the Bundle holds 2 Patients"
