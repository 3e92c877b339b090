"""The de-identified feedback store: cases, cards, suggestions, feedback, reviews and an audit trail."""

from clinrlhf.store.audit import record_audit, verify_chain
from clinrlhf.store.cards import add_card, get_card
from clinrlhf.store.cases import DeidentifiedCase, UnreadableRecordError, add_case, deidentify_case
from clinrlhf.store.db import (
    init_db,
    make_engine,
    make_session,
    make_session_factory,
    open_store,
    transaction,
)
from clinrlhf.store.errors import InvalidInputError, NotFoundError, StoreError
from clinrlhf.store.feedback import FeedbackEntry, record_feedback
from clinrlhf.store.reviews import ReviewEntry, record_review
from clinrlhf.store.snapshot import export_judgments
from clinrlhf.store.stats import counts

__all__ = [
    "DeidentifiedCase",
    "FeedbackEntry",
    "InvalidInputError",
    "NotFoundError",
    "ReviewEntry",
    "StoreError",
    "UnreadableRecordError",
    "add_card",
    "add_case",
    "counts",
    "deidentify_case",
    "export_judgments",
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
    "verify_chain",
]
