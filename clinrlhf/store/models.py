"""The feedback store's tables. Everything here is de-identified by construction.

Patients and clinicians appear only as HMAC pseudonyms (``privacy.deid.pseudonym``), clinical data
only as ``PatientFacts`` JSON, and text only in the policy's own language (prompts and responses).
Free text that clinicians type is never stored: a row records only that a comment was present.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Naive UTC with microseconds: one representation that SQLite and PostgreSQL both keep exactly."""
    return datetime.now(UTC).replace(tzinfo=None)


# Deterministic constraint names, so that a migration can name what it alters on every database
# (https://alembic.sqlalchemy.org/en/latest/naming.html). Check constraints are named by hand.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Case(Base):
    """One patient's de-identified clinical picture on one day."""

    __tablename__ = "cases"
    __table_args__ = (CheckConstraint("source IN ('cds', 'ingest')", name="ck_cases_source"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    patient: Mapped[str] = mapped_column(String(64), index=True)  # pseudonym
    facts: Mapped[str] = mapped_column(Text)  # PatientFacts.to_json()
    source: Mapped[str] = mapped_column(String(16))
    deid_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Set for ingested cases only, so that ingesting the same file twice stores each case once.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    cards: Mapped[list[Card]] = relationship(back_populates="case", order_by="Card.created_at")


class ModelDevice(Base):
    """A model that drafted cards, served as an AI-Device (HL7 AI Transparency on FHIR): its weights,
    and its MLflow registered version and training run where the service knew them. The id is derived
    from the run (or the weights), so every replica names one model alike."""

    __tablename__ = "model_devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(128))  # folder@weights digest
    registry_name: Mapped[str | None] = mapped_column(String(128), default=None)
    registry_version: Mapped[str | None] = mapped_column(String(32), default=None)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Its AI-ModelCard DocumentReference, rendered from the training run: none without a known run.
    model_card_id: Mapped[str | None] = mapped_column(String(36), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Card(Base):
    """A CDS card: the suggestions made for one target problem of one case."""

    __tablename__ = "cards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    target: Mapped[str] = mapped_column(String(64))  # world target key
    prompt: Mapped[str] = mapped_column(Text)  # the policy prompt (de-identified by construction)
    model_version: Mapped[str] = mapped_column(String(128))
    # Pseudonym of the CDS Hooks context.userId the card was shown to; None when the client sent none.
    clinician: Mapped[str | None] = mapped_column(String(64), default=None)
    # Pseudonym of the CDS client (token issuer and subject) that asserted that user: the EHR speaks
    # for its user, so the record says which EHR did. None for cards stored before it was kept.
    client: Mapped[str | None] = mapped_column(String(64), default=None)
    # The model_devices row of the model that drafted the card (AI transparency: its Provenance names
    # that Device). None for cards stored before it was kept. No foreign key: SQLite cannot add one to
    # an existing table without copying it; the device is written in the card's transaction.
    device_id: Mapped[str | None] = mapped_column(String(36), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    case: Mapped[Case] = relationship(back_populates="cards")
    suggestions: Mapped[list[Suggestion]] = relationship(back_populates="card", order_by="Suggestion.rank")


class Suggestion(Base):
    __tablename__ = "suggestions"
    __table_args__ = (UniqueConstraint("card_id", "rank", name="uq_suggestions_card_rank"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)  # 0 is the recommended suggestion
    drug: Mapped[str | None] = mapped_column(String(64), default=None)  # world drug key
    text: Mapped[str] = mapped_column(Text)  # the policy's response

    card: Mapped[Card] = relationship(back_populates="suggestions")


class Feedback(Base):
    """One CDS Hooks feedback entry: a suggestion accepted, or the card overridden."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("outcome IN ('accepted', 'overridden')", name="ck_feedback_outcome"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    clinician: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    accepted_suggestion_id: Mapped[str | None] = mapped_column(ForeignKey("suggestions.id"), default=None)
    override_reason_system: Mapped[str | None] = mapped_column(String(256), default=None)
    override_reason_code: Mapped[str | None] = mapped_column(String(64), default=None)
    has_comment: Mapped[bool] = mapped_column(default=False)
    outcome_timestamp: Mapped[datetime | None] = mapped_column(default=None)
    # Pseudonym of the CDS client that reported the outcome; None for rows stored before it was kept.
    client: Mapped[str | None] = mapped_column(String(64), default=None)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    card: Mapped[Card] = relationship()
    accepted_suggestion: Mapped[Suggestion | None] = relationship()


class Review(Base):
    """A clinician's review (FHIR QuestionnaireResponse) of two suggestions of one card."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("choice IS NULL OR choice IN ('a', 'b', 'tie')", name="ck_reviews_choice"),
        CheckConstraint("rating_a IS NULL OR rating_a BETWEEN 1 AND 5", name="ck_reviews_rating_a"),
        CheckConstraint("rating_b IS NULL OR rating_b BETWEEN 1 AND 5", name="ck_reviews_rating_b"),
        # The review rules, kept by the database whichever path a review comes by (issue 20): one
        # review per clinician per case, and each case's reviewers in distinct seats 0..k-1, so two
        # writers racing for the last seat cannot both take it. Rows from before seats existed keep
        # a NULL seat, and NULLs are distinct in a UNIQUE index (see migration 0005).
        Index(
            "uq_reviews_card_clinician",
            "card_id",
            "clinician",
            unique=True,
            sqlite_where=text("seat IS NOT NULL"),
            postgresql_where=text("seat IS NOT NULL"),
        ),
        Index("uq_reviews_card_seat", "card_id", "seat", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    clinician: Mapped[str] = mapped_column(String(64), index=True)  # the review page's queue asks "by whom"
    suggestion_a_id: Mapped[str] = mapped_column(ForeignKey("suggestions.id"))
    suggestion_b_id: Mapped[str] = mapped_column(ForeignKey("suggestions.id"))
    choice: Mapped[str | None] = mapped_column(String(8), default=None)
    rating_a: Mapped[int | None] = mapped_column(default=None)
    rating_b: Mapped[int | None] = mapped_column(default=None)
    correction_drug: Mapped[str | None] = mapped_column(String(64), default=None)
    has_comment: Mapped[bool] = mapped_column(default=False)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    seat: Mapped[int | None] = mapped_column(default=None)  # 0..k-1; see uq_reviews_card_seat

    card: Mapped[Card] = relationship()
    suggestion_a: Mapped[Suggestion] = relationship(foreign_keys=[suggestion_a_id])
    suggestion_b: Mapped[Suggestion] = relationship(foreign_keys=[suggestion_b_id])


class AuditEvent(Base):
    """An append-only, hash-chained record of who did what (modelled on FHIR AuditEvent)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    recorded: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))  # "<role>:<pseudonym>" or "cli"
    action: Mapped[str] = mapped_column(String(1))  # FHIR AuditEvent.action: C R U D E
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(2))  # FHIR AuditEvent.outcome: 0 4 8 12
    # SHA-256 of what a create event recorded (the row as written), so that `clinrlhf audit verify`
    # also detects edits to the feedback tables, not only to this one. None for reads and legacy rows.
    entity_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # UNIQUE on prev_hash keeps the chain linear: two writers racing to extend it cannot both win.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class UsedTokenId(Base):
    """A token id (`jti`) already presented, kept until its token expires: replay protection that
    every worker and replica shares (clinrlhf.store.replay). Token ids are random, not personal."""

    __tablename__ = "used_token_ids"

    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # the token's `exp`, Unix seconds


class RateBucket(Base):
    """One client's token bucket for the review page's rate limit, shared by every worker and replica
    (clinrlhf.store.rate_limit). The client is named only by a keyed hash: never an address, a
    session id or a token. A missing row is a full bucket, so rows idle long enough to be full again
    are deleted."""

    __tablename__ = "rate_buckets"

    client_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256, hex
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)  # when `tokens` was computed, Unix seconds (wall clock)
