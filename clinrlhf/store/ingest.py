"""Bulk ingestion: split FHIR resources into one Bundle per Patient, de-identify, store as cases.

Sources are FHIR R4 Bundles (transaction, collection, searchset: one or many patients) and Bulk Data
NDJSON exports, where each resource type sits in its own file and resources point at their patient
through `subject` or `patient` references.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from clinrlhf.store.audit import record_audit
from clinrlhf.store.cases import UnreadableRecordError, add_case, deidentify_case

_PATIENT_LINKS = ("subject", "patient")


@dataclass
class IngestSummary:
    cases: int = 0  # new cases stored
    duplicates: int = 0  # cases already stored by an earlier ingest
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> sources or patients skipped
    dropped: Counter[str] = field(default_factory=Counter)  # resourceType -> resources not kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "duplicates": self.duplicates,
            "skipped": dict(sorted(self.skipped.items())),
            "dropped": dict(sorted(self.dropped.items())),
        }


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
            unlinked[str(r.get("resourceType", "unknown"))] += 1
        else:
            groups[key].append(r)
    bundles = [
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in group]}
        for group in groups.values()
    ]
    return bundles, unlinked


def split_bundle(bundle: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Counter[str]]:
    """`split_by_patient` over the entries of one Bundle, honouring its fullUrls."""
    entries = [
        e
        for e in bundle.get("entry") or []
        if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
    ]
    full_urls = {id(e["resource"]): e["fullUrl"] for e in entries if isinstance(e.get("fullUrl"), str)}
    return split_by_patient([e["resource"] for e in entries], full_urls)


def ingest_patient_bundles(
    session: Session,
    bundles: Iterable[Mapping[str, Any]],
    *,
    key: bytes,
    today: date,
    summary: IngestSummary,
    actor: str = "cli",
) -> IngestSummary:
    """De-identify and store each one-patient Bundle as a case (source "ingest"), at most once."""
    for bundle in bundles:
        try:
            case = deidentify_case(bundle, key=key, today=today)
        except UnreadableRecordError:
            summary.skipped["unreadable-patient"] += 1
            continue
        for what, n in case.counts.items():
            if what.startswith("resource.") and what.endswith(":redact"):
                summary.dropped[what.removeprefix("resource.").removesuffix(":redact")] += n
        row, created = add_case(session, case, source="ingest", idempotent=True)
        if created:
            summary.cases += 1
            record_audit(session, actor=actor, action="C", entity_type="Case", entity_id=row.id)
        else:
            summary.duplicates += 1
    return summary
