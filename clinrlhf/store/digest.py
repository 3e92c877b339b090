"""A stable SHA-256 of a stored row: what a create event in the audit trail vouches for."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from clinrlhf.store.models import Base, Card, Case, Feedback, Review

# Audit entity types whose rows the trail vouches for. Reviews arrive as QuestionnaireResponses.
Recorded = Case | Card | Feedback | Review
RECORDED: dict[str, type[Recorded]] = {"Case": Case, "Card": Card, "Feedback": Feedback, "Review": Review}
ALIASES = {"QuestionnaireResponse": "Review"}


def recorded_type(entity_type: str) -> str | None:
    """The RECORDED key an audit entity type names, or None for types that are not rows (exports)."""
    name = ALIASES.get(entity_type, entity_type)
    return name if name in RECORDED else None


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# Columns added after rows were first vouched for: left out of a digest while NULL, so that rows
# written before them (NULL there) keep the digest their create event recorded.
ADDED_LATER = frozenset({"client", "seat"})


def values_sha256(values: Mapping[str, Any]) -> str:
    """SHA-256 of a row given as its column values, as canonical JSON (datetimes in ISO format):
    the one digest of the trail, whether a writer takes it from the values it inserts or the
    verifier from the row as loaded."""
    canonical = json.dumps(_content(values), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _content(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in values.items() if not (v is None and k in ADDED_LATER)}


def _columns(row: Base) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(row).mapper.column_attrs}


def row_sha256(row: Base) -> str:
    """`values_sha256` of a loaded row; a card includes its suggestions, which are written with it
    and never apart."""
    values = _columns(row)
    if isinstance(row, Card):
        values["suggestions"] = [_content(_columns(s)) for s in row.suggestions]
    return values_sha256(values)


def created_row_sha256(session: Session, entity_type: str, entity_id: str) -> str | None:
    """The digest of a row just written in this session (found in its identity map, without SQL)."""
    name = recorded_type(entity_type)
    if name is None:
        return None
    row = session.get(RECORDED[name], entity_id)
    return row_sha256(row) if row is not None else None
