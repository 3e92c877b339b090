"""One Bundle per Patient: FHIR resources grouped by the patient they describe.

De-identification works one patient at a time (one date shift, one set of the patient's own
identifiers for the scrubber), so a multi-patient Bundle or a Bulk Data NDJSON export, where each
resource type sits in its own file, is first split into one collection Bundle per Patient. A
resource names its patient through `subject` or `patient`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from privacy.deid.resource_types import type_name

_PATIENT_LINKS = ("subject", "patient")


def _aliases(patient: Mapping[str, Any], full_url: str | None) -> set[str]:
    pid = str(patient.get("id", ""))
    names = {f"Patient/{pid}", f"urn:uuid:{pid}"} if pid else set()
    return names | ({full_url} if full_url else set())


def _reference_of(resource: Mapping[str, Any]) -> str | None:
    for name in _PATIENT_LINKS:
        link = resource.get(name)
        if isinstance(link, Mapping) and isinstance(link.get("reference"), str):
            return link["reference"]
    return None


def _normalise(reference: str) -> str:
    """`https://ehr/fhir/Patient/1` and `Patient/1` name the same patient."""
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 and parts[-2] == "Patient" else reference


def split_by_patient(
    resources: Iterable[Mapping[str, Any]],
    full_urls: Mapping[int, str] | None = None,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """One collection Bundle per Patient, holding the Patient and every resource that references it.

    `full_urls` maps id() of a resource to its Bundle entry's fullUrl, for bundles whose references
    use `urn:uuid:` fullUrls. Returns (bundles, resourceType -> count of unlinked resources).
    """
    resources = list(resources)
    full_urls = full_urls or {}
    groups: dict[int, list[Mapping[str, Any]]] = {}
    owner: dict[str, int] = {}
    for r in resources:
        if r.get("resourceType") == "Patient":
            groups[id(r)] = [r]
            owner.update(dict.fromkeys(_aliases(r, full_urls.get(id(r))), id(r)))
    unlinked: Counter[str] = Counter()
    for r in resources:
        if r.get("resourceType") == "Patient":
            continue
        ref = _reference_of(r)
        key = None if ref is None else owner.get(ref, owner.get(_normalise(ref)))
        if key is None:
            unlinked[type_name(r.get("resourceType"))] += 1
        else:
            groups[key].append(r)
    bundles = [
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in group]}
        for group in groups.values()
    ]
    return bundles, unlinked


def bundle_resources(bundle: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], dict[int, str]]:
    """The resources of a Bundle's entries, and id() of each -> its entry's fullUrl."""
    entries = [
        e
        for e in bundle.get("entry") or []
        if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
    ]
    full_urls = {id(e["resource"]): e["fullUrl"] for e in entries if isinstance(e.get("fullUrl"), str)}
    return [e["resource"] for e in entries], full_urls


def split_bundle(bundle: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """`split_by_patient` over the entries of one Bundle, honouring its fullUrls."""
    return split_by_patient(*bundle_resources(bundle))
