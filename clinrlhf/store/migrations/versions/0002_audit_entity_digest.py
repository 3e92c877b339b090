"""Audit events carry a digest of the row they created; reviews are indexed by clinician.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch copy: copying audit_events would drop its append-only triggers.
    op.add_column("audit_events", sa.Column("entity_sha256", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_reviews_clinician"), "reviews", ["clinician"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reviews_clinician"), table_name="reviews")
    # DROP COLUMN (SQLite >= 3.35) in place, for the same reason.
    op.drop_column("audit_events", "entity_sha256")
