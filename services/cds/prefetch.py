"""Assemble one patient's FHIR Bundle from a CDS Hooks prefetch, before it is de-identified."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from clinrlhf.world.facts import LOINC
from clinrlhf.world.labs import is_possible
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


def _loinc_codes(resource: Mapping[str, Any]) -> list[str]:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, Mapping) else None
    return [
        str(c.get("code"))
        for c in (codings if isinstance(codings, list) else [])
        if isinstance(c, Mapping) and c.get("system") == LOINC
    ]


def _is_resource_type(name: object) -> bool:
    if not isinstance(name, str):
        return False
    try:
        get_fhir_model_class(name)
    except (ValueError, KeyError):
        return False
    return True


def check_resource_types(resources: list[Mapping[str, Any]]) -> None:
    """Raises PrefetchError 422 for a resource, or a contained one, of a type FHIR R4B does not
    define (`contained: [{"resourceType": "Foo"}]`): a malformed record, refused rather than read."""
    for resource in resources:
        contained = resource.get("contained") or []
        inner = contained if isinstance(contained, list) else [contained]
        for r in (resource, *inner):
            if not isinstance(r, Mapping) or not _is_resource_type(r.get("resourceType")):
                raise PrefetchError(422, "prefetch holds a resource of a type FHIR R4B does not define")


def check_lab_values(resources: list[Mapping[str, Any]]) -> None:
    """Raises PrefetchError 422 for an Observation whose value no patient can have: not a JSON
    number (FHIR decimals are numbers), not finite (NaN, ±Infinity, 1e999), or outside the physical
    range of its lab (a negative eGFR, 1e308 mmol/L of potassium). Such a value would make a card."""
    for resource in resources:
        quantity = resource.get("valueQuantity")
        if resource.get("resourceType") != "Observation" or not isinstance(quantity, Mapping):
            continue
        value = quantity.get("value")
        if value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (
            number and math.isfinite(value) and all(is_possible(c, value) for c in _loinc_codes(resource))
        ):
            raise PrefetchError(
                422, "an Observation's valueQuantity.value is not a finite number its lab can report"
            )


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
    check_resource_types(resources)
    check_lab_values(resources)
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
