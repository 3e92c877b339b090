"""Assemble one patient's FHIR Bundle from a CDS Hooks prefetch, before it is de-identified."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.cds.discovery import PREFETCH

SEARCH_KEYS = tuple(k for k in PREFETCH if k != "patient")


class PrefetchError(ValueError):
    """The prefetch is unusable. `status` is 412 when data is missing, 422 when it is malformed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _search_resources(key: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Mapping) or value.get("resourceType") != "Bundle":
        raise PrefetchError(422, f"prefetch.{key} must be a FHIR Bundle (searchset)")
    entries = value.get("entry") or []
    if not isinstance(entries, list):
        raise PrefetchError(422, f"prefetch.{key}.entry must be a list")
    resources = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        resource, search = entry.get("resource"), entry.get("search")
        mode = search.get("mode") if isinstance(search, Mapping) else None
        # Search results may carry OperationOutcome warnings (search.mode "outcome"): not patient data.
        if (
            isinstance(resource, Mapping)
            and mode != "outcome"
            and resource.get("resourceType") != "OperationOutcome"
        ):
            resources.append(resource)
    return resources


def bundle_from_prefetch(prefetch: Mapping[str, Any] | None) -> dict[str, Any]:
    """A collection Bundle holding the Patient and every resource the search prefetches returned.

    Every key is required: without, say, the allergy list the service could recommend a drug the
    patient is allergic to, so missing data is a 412 (CDS Hooks: "unable to retrieve the necessary
    FHIR data"), never an empty list.
    """
    if not prefetch:
        raise PrefetchError(412, "prefetch is required: send every key listed in discovery, or a fhirServer")
    missing = [k for k in PREFETCH if prefetch.get(k) is None]
    if missing:
        raise PrefetchError(412, f"prefetch is missing {', '.join(missing)} and no fhirServer was given")
    patient = prefetch["patient"]
    if not isinstance(patient, Mapping) or patient.get("resourceType") != "Patient":
        raise PrefetchError(422, "prefetch.patient must be a FHIR Patient resource")
    resources: list[Mapping[str, Any]] = [patient]
    for key in SEARCH_KEYS:
        resources += _search_resources(key, prefetch[key])
    if any(r.get("resourceType") == "Patient" for r in resources[1:]):
        raise PrefetchError(422, "search prefetches must not contain Patient resources")
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
