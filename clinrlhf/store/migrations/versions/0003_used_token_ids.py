"""Token ids already used, shared by every worker, for replay protection.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "used_token_ids",
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name=op.f("pk_used_token_ids")),
    )
    op.create_index(op.f("ix_used_token_ids_expires_at"), "used_token_ids", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_used_token_ids_expires_at"), table_name="used_token_ids")
    op.drop_table("used_token_ids")
