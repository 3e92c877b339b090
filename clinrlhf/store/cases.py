"""De-identification at the door, then a stored case: the only way patient data enters the store."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy.orm import Session

from clinrlhf.store.models import Case
from clinrlhf.store.once import insert_once
from clinrlhf.world.facts import PatientFacts, facts_from_bundle
from privacy.deid import deidentify_bundle

Source = Literal["cds", "ingest"]


class UnreadableRecordError(ValueError):
    """The record is not one patient's FHIR data we can read. Carries no record content."""


@dataclass(frozen=True)
class DeidentifiedCase:
    patient: str  # pseudonym
    facts: PatientFacts
    counts: dict[str, int]  # de-identification counts, "<what>:<method>" -> n


def deidentify_case(bundle: Mapping[str, Any], *, key: bytes, today: date) -> DeidentifiedCase:
    """De-identify one patient's Bundle and read its facts from the de-identified copy only.

    Any failure raises UnreadableRecordError with a fixed message: the original exception text may
    quote the record, so it is neither chained nor kept.
    """
    try:
        result = deidentify_bundle(bundle, key=key, today=today)
        facts = facts_from_bundle(result.bundle, on=today)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        raise UnreadableRecordError("the record is not one patient's readable FHIR R4 data") from None
    return DeidentifiedCase(patient=result.patient, facts=facts, counts=dict(result.counts))


def case_key(case: DeidentifiedCase, source: Source) -> str:
    """Identity of an ingested case: the same patient with the same facts is stored once."""
    return hashlib.sha256(f"{source}\x00{case.patient}\x00{case.facts.to_json()}".encode()).hexdigest()


def add_case(
    session: Session, case: DeidentifiedCase, *, source: Source, idempotent: bool = False
) -> tuple[Case, bool]:
    """Store a case and return (row, created). With `idempotent` (ingest), an identical case already
    stored is returned instead of a duplicate; cases from live CDS requests are each their own visit."""
    row = Case(patient=case.patient, facts=case.facts.to_json(), source=source, deid_counts=case.counts)
    if not idempotent:
        session.add(row)
        session.flush()
        return row, True
    row.idempotency_key = case_key(case, source)
    return insert_once(session, row, Case, row.idempotency_key)
