"""De-identification at the door, then a stored case: the only way patient data enters the store."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy.orm import Session

from clinrlhf.store.models import Case
from clinrlhf.store.once import insert_once
from clinrlhf.world.facts import PatientFacts, facts_from_bundle
from clinrlhf.world.known import known_facts
from clinrlhf.world.world import load_world
from privacy.deid import deidentify_bundle

Source = Literal["cds", "ingest"]


class UnreadableRecordError(ValueError):
    """The record is not one patient's FHIR data we can read. Carries no record content: `reason`
    is one of a fixed set of phrases (`unreadable_reason`), never text taken from the record."""

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


# Messages raised by our own code, fixed text with at most a count: safe to pass on as the reason.
_KNOWN_REASONS = (
    (
        re.compile(r"expected exactly one Patient in the [Bb]undle, found (\d+)"),
        "the Bundle holds {} Patients",
    ),
    (re.compile(r"not a FHIR Bundle with entries"), "not a FHIR Bundle with entries"),
    (
        re.compile(r"an element the rules keep holds a value of the wrong type"),
        "an element the de-identification rules keep holds a value of the wrong type",
    ),
    (
        re.compile(r"Patient has neither birthDate nor an age extension"),
        "the Patient has neither a birth date nor an age",
    ),
)


def unreadable_reason(err: Exception, stage: str) -> str:
    """Why a record could not be read, without quoting it: a known fixed message of ours, else the
    stage that failed and the exception's class (library messages may quote the value they reject)."""
    message = str(err) if type(err) is ValueError else ""
    for pattern, reason in _KNOWN_REASONS:
        m = pattern.fullmatch(message)
        if m:
            return reason.format(*m.groups())
    return f"{stage} failed ({type(err).__name__})"


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
    stage = "de-identification"
    try:
        result = deidentify_bundle(bundle, key=key, today=today)
        stage = "reading the de-identified record"
        # Only the world's own codes are stored: a code system's shape admits numbers nobody assigned.
        facts = known_facts(facts_from_bundle(result.bundle, on=today), load_world())
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as err:
        reason = unreadable_reason(err, stage)
        raise UnreadableRecordError("the record is not one patient's readable FHIR R4 data", reason) from None
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
