"""Review seats (one review per clinician per case, at most k per case, kept by UNIQUE indexes) and
the CDS client that asserted a card's user or reported its outcome.

Existing reviews keep a NULL seat: the audit trail vouches for each row as it was written, and
NULLs are distinct in a UNIQUE index, so rows from before this revision (duplicates included) stay
as they are. New reviews take seat n, where n counts the case's reviewers so far, legacy ones
included (clinrlhf.store.reviews), so the limits hold from here on.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_SEATED = sa.text("seat IS NOT NULL")


def upgrade() -> None:
    # Plain ADD COLUMNs, not batch copies (see 0002).
    op.add_column("cards", sa.Column("client", sa.String(length=64), nullable=True))
    op.add_column("feedback", sa.Column("client", sa.String(length=64), nullable=True))
    op.add_column("reviews", sa.Column("seat", sa.Integer(), nullable=True))
    op.create_index(
        "uq_reviews_card_clinician",
        "reviews",
        ["card_id", "clinician"],
        unique=True,
        sqlite_where=_SEATED,
        postgresql_where=_SEATED,
    )
    op.create_index("uq_reviews_card_seat", "reviews", ["card_id", "seat"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_reviews_card_seat", table_name="reviews")
    op.drop_index("uq_reviews_card_clinician", table_name="reviews")
    op.drop_column("reviews", "seat")
    op.drop_column("feedback", "client")
    op.drop_column("cards", "client")
