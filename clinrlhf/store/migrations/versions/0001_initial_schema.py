"""The initial schema: cases, cards, suggestions, feedback, reviews and the append-only audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Equal to the models as `Base.metadata.create_all` built them before migrations existed; a store
created that way is stamped with this revision on first open (see `clinrlhf.store.migrate`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# The audit trail is append-only in the database itself, not only by convention in the code.
_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_events_no_{op_.lower()} BEFORE {op_} ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    for op_ in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
]


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(), nullable=False)


def _audit_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recorded", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=2), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_events_id")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_events_prev_hash")),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)


def _cases_and_cards() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient", sa.String(length=64), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("deid_counts", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        _created_at(),
        sa.CheckConstraint("source IN ('cds', 'ingest')", name="ck_cases_source"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_cases_idempotency_key")),
    )
    op.create_index(op.f("ix_cases_created_at"), "cases", ["created_at"])
    op.create_index(op.f("ix_cases_patient"), "cases", ["patient"])
    op.create_table(
        "cards",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("clinician", sa.String(length=64), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_cards_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
    )
    op.create_index(op.f("ix_cards_case_id"), "cards", ["case_id"])
    op.create_index(op.f("ix_cards_created_at"), "cards", ["created_at"])
    op.create_table(
        "suggestions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("card_id", sa.String(length=36), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("drug", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_suggestions_card_id_cards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suggestions")),
        sa.UniqueConstraint("card_id", "rank", name="uq_suggestions_card_rank"),
    )
    op.create_index(op.f("ix_suggestions_card_id"), "suggestions", ["card_id"])


def _feedback() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("card_id", sa.String(length=36), nullable=False),
        sa.Column("clinician", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("accepted_suggestion_id", sa.String(length=36), nullable=True),
        sa.Column("override_reason_system", sa.String(length=256), nullable=True),
        sa.Column("override_reason_code", sa.String(length=64), nullable=True),
        sa.Column("has_comment", sa.Boolean(), nullable=False),
        sa.Column("outcome_timestamp", sa.DateTime(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        _created_at(),
        sa.CheckConstraint("outcome IN ('accepted', 'overridden')", name="ck_feedback_outcome"),
        sa.ForeignKeyConstraint(
            ["accepted_suggestion_id"],
            ["suggestions.id"],
            name=op.f("fk_feedback_accepted_suggestion_id_suggestions"),
        ),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_feedback_card_id_cards")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_feedback_idempotency_key")),
    )
    op.create_index(op.f("ix_feedback_card_id"), "feedback", ["card_id"])
    op.create_index(op.f("ix_feedback_created_at"), "feedback", ["created_at"])


def _reviews() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("card_id", sa.String(length=36), nullable=False),
        sa.Column("clinician", sa.String(length=64), nullable=False),
        sa.Column("suggestion_a_id", sa.String(length=36), nullable=False),
        sa.Column("suggestion_b_id", sa.String(length=36), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=True),
        sa.Column("rating_a", sa.Integer(), nullable=True),
        sa.Column("rating_b", sa.Integer(), nullable=True),
        sa.Column("correction_drug", sa.String(length=64), nullable=True),
        sa.Column("has_comment", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        _created_at(),
        sa.CheckConstraint("choice IS NULL OR choice IN ('a', 'b', 'tie')", name="ck_reviews_choice"),
        sa.CheckConstraint("rating_a IS NULL OR rating_a BETWEEN 1 AND 5", name="ck_reviews_rating_a"),
        sa.CheckConstraint("rating_b IS NULL OR rating_b BETWEEN 1 AND 5", name="ck_reviews_rating_b"),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_reviews_card_id_cards")),
        sa.ForeignKeyConstraint(
            ["suggestion_a_id"], ["suggestions.id"], name=op.f("fk_reviews_suggestion_a_id_suggestions")
        ),
        sa.ForeignKeyConstraint(
            ["suggestion_b_id"], ["suggestions.id"], name=op.f("fk_reviews_suggestion_b_id_suggestions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reviews_idempotency_key")),
    )
    op.create_index(op.f("ix_reviews_card_id"), "reviews", ["card_id"])
    op.create_index(op.f("ix_reviews_created_at"), "reviews", ["created_at"])


def upgrade() -> None:
    _audit_events()
    _cases_and_cards()
    _feedback()
    _reviews()


def downgrade() -> None:
    for table in ("reviews", "feedback", "suggestions", "cards", "cases", "audit_events"):
        op.drop_table(table)  # indexes and triggers go with their table
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
