"""A stable SHA-256 of a stored row: what a create event in the audit trail vouches for."""

from __future__ import annotations

import hashlib
import json
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


def without_unset_later_columns(content: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in content.items() if not (v is None and k in ADDED_LATER)}


def row_content(row: Base) -> dict[str, Any]:
    content = {attr.key: _plain(getattr(row, attr.key)) for attr in inspect(row).mapper.column_attrs}
    return without_unset_later_columns(content)


def row_sha256(row: Base) -> str:
    """SHA-256 of the row's columns as canonical JSON; a card includes its suggestions, which are
    written with it and never apart."""
    content = row_content(row)
    if isinstance(row, Card):
        content["suggestions"] = [row_content(s) for s in row.suggestions]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def created_row_sha256(session: Session, entity_type: str, entity_id: str) -> str | None:
    """The digest of a row just written in this session (found in its identity map, without SQL)."""
    name = recorded_type(entity_type)
    if name is None:
        return None
    row = session.get(RECORDED[name], entity_id)
    return row_sha256(row) if row is not None else None
