"""The de-identified feedback store: cases, cards, suggestions, feedback, reviews and an audit trail."""

from clinrlhf.store.audit import bind_audit_key, record_audit, verify_chain
from clinrlhf.store.audit_verify import Anchor, AuditReport, Head, verify_audit
from clinrlhf.store.cards import add_card, get_card
from clinrlhf.store.cases import DeidentifiedCase, UnreadableRecordError, add_case, deidentify_case
from clinrlhf.store.db import (
    consistent_read,
    deployment_store,
    init_db,
    make_engine,
    make_session,
    make_session_factory,
    open_store,
    transaction,
)
from clinrlhf.store.errors import InvalidInputError, NotFoundError, StoreError
from clinrlhf.store.export import SNAPSHOT_FORMAT, Snapshot, export_snapshot
from clinrlhf.store.feedback import record_feedback
from clinrlhf.store.feedback_entry import FeedbackEntry
from clinrlhf.store.reviews import ReviewEntry, record_review
from clinrlhf.store.snapshot import export_judgments
from clinrlhf.store.stats import counts

__all__ = [
    "AuditReport",
    "DeidentifiedCase",
    "FeedbackEntry",
    "Head",
    "Anchor",
    "bind_audit_key",
    "InvalidInputError",
    "NotFoundError",
    "ReviewEntry",
    "SNAPSHOT_FORMAT",
    "Snapshot",
    "StoreError",
    "UnreadableRecordError",
    "add_card",
    "add_case",
    "consistent_read",
    "counts",
    "deidentify_case",
    "deployment_store",
    "export_judgments",
    "export_snapshot",
    "get_card",
    "init_db",
    "make_engine",
    "make_session",
    "make_session_factory",
    "open_store",
    "record_audit",
    "record_feedback",
    "record_review",
    "transaction",
    "verify_audit",
    "verify_chain",
]
