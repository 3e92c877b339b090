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
from privacy.deid import DeidReport, default_rules
from privacy.deid.kanon import QuasiIdentifiers, k_report, quasi_identifiers_of_patient
from privacy.deid.split import split_bundle, split_by_patient

# The split lives with de-identification (privacy.deid.split), which `clinrlhf deidentify` and
# `POST /fhir/$deidentify` share; ingestion's callers still find it here.
__all__ = ["IngestSummary", "Skip", "ingest_patient_bundles", "split_bundle", "split_by_patient"]


def _empty_report() -> DeidReport:
    rules = default_rules()
    return DeidReport(rules.name, rules.version, rules.sha256)


@dataclass(frozen=True)
class Skip:
    """One source or patient not stored, and why. `source` names a file by its place on the command
    line, never by its path (file names carry patient names); `reason` is a fixed phrase."""

    source: str
    reason: str
    patient: int | None = None  # 1-based, among the source's patients

    def line(self) -> str:
        where = self.source if self.patient is None else f"{self.source}, patient {self.patient}"
        return f"skipped {where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "patient": self.patient, "reason": self.reason}


@dataclass
class IngestSummary:
    cases: int = 0  # new cases stored
    duplicates: int = 0  # cases already stored by an earlier ingest
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> sources or patients skipped
    skips: list[Skip] = field(default_factory=list)  # each of them, with its source and full reason
    dropped: Counter[str] = field(default_factory=Counter)  # resourceType -> resources not kept
    report: DeidReport = field(default_factory=_empty_report)  # the batch's de-identification report
    quasi_identifiers: list[QuasiIdentifiers] = field(default_factory=list)  # generalized, per patient

    def finish(self) -> DeidReport:
        """The batch report, with the k-anonymity of the batch's quasi-identifiers."""
        k = default_rules().parameters.get("kAnonymity") or {}
        self.report.k_anonymity = k_report(self.quasi_identifiers, int(k.get("minK", 5)))
        return self.report

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "duplicates": self.duplicates,
            "skipped": dict(sorted(self.skipped.items())),
            "skips": [s.to_dict() for s in self.skips],
            "dropped": dict(sorted(self.dropped.items())),
        }


def _quasi_identifiers(bundle: Mapping[str, Any], today: date) -> QuasiIdentifiers:
    """Generalized at once (age band, sex, ZIP3): the raw values are never kept."""
    rules = default_rules()
    band = int((rules.parameters.get("kAnonymity") or {}).get("ageBandYears", 10))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"].get("resourceType") == "Patient")
    return quasi_identifiers_of_patient(
        patient, today, band_width=band, age_cap=rules.age_cap, restricted_zip3=rules.restricted_zip3
    )


def ingest_patient_bundles(
    session: Session,
    bundles: Iterable[Mapping[str, Any]],
    *,
    key: bytes,
    today: date,
    summary: IngestSummary,
    actor: str = "cli",
    source: str = "input",
) -> IngestSummary:
    """De-identify and store each one-patient Bundle as a case (source "ingest"), at most once.
    `source` names where the bundles came from in the summary's skips (e.g. "PATH argument 2")."""
    for n, bundle in enumerate(bundles, 1):
        try:
            case = deidentify_case(bundle, key=key, today=today)
        except UnreadableRecordError as err:
            summary.skipped["unreadable-patient"] += 1
            summary.skips.append(Skip(source, err.reason, patient=n))
            continue
        dropped = 0
        for what, n in case.counts.items():
            if what.startswith("resource.") and what.endswith(":redact"):
                summary.dropped[what.removeprefix("resource.").removesuffix(":redact")] += n
                dropped += n
        resources = len(bundle.get("entry") or [])
        summary.report.add(case.counts, resources_in=resources, resources_out=resources - dropped)
        summary.quasi_identifiers.append(_quasi_identifiers(bundle, today))
        row, created = add_case(session, case, source="ingest", idempotent=True)
        if created:
            summary.cases += 1
            record_audit(session, actor=actor, action="C", entity_type="Case", entity_id=row.id)
        else:
            summary.duplicates += 1
    return summary
