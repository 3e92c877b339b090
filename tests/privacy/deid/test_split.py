"""Splitting a Bundle by patient: what the count of resources of no patient may hold.

The unlinked counts are keyed by resource type and travel where values never may: the `$deidentify`
report a hospital shares, `clinrlhf deidentify`'s report and ingestion's report file on disk. A
resourceType is text the sender chose, so only the names FHIR defines are kept as keys.
"""

from __future__ import annotations

from typing import Any

from privacy.deid.split import split_bundle

PLANTED = "Lindqvist 555-12-3456"


def _bundle(*extra: dict[str, Any]) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1"}
    linked = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}}
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in (patient, linked, *extra)]}


def test_resources_of_no_patient_are_counted_by_their_fhir_type() -> None:
    bundles, unlinked = split_bundle(
        _bundle({"resourceType": "Organization"}, {"resourceType": "Organization"})
    )
    assert len(bundles) == 1 and len(bundles[0]["entry"]) == 2
    assert unlinked == {"Organization": 2}


def test_a_resource_type_that_is_not_fhirs_is_never_a_key_of_the_counts() -> None:
    _, unlinked = split_bundle(
        _bundle(
            {"resourceType": PLANTED},
            {"resourceType": {"name": PLANTED}},
            {"resourceType": ["MedicationRequest", PLANTED]},
            {"note": "no resourceType at all"},
        )
    )
    assert PLANTED not in repr(dict(unlinked))
    assert unlinked == {"unknown": 4}
