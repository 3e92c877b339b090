"""The models that drafted cards (AI transparency): a `model_devices` table, and each card's device.

Cards stored before this revision keep a NULL device: nothing recorded which registered version
drafted them, and a guess would be a false provenance.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "model_devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("registry_name", sa.String(length=128), nullable=True),
        sa.Column("registry_version", sa.String(length=32), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("model_card_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_devices")),
        sa.UniqueConstraint("model_card_id", name=op.f("uq_model_devices_model_card_id")),
    )
    # A plain ADD COLUMN (see 0002), with no foreign key: SQLite cannot add one to an existing table
    # without a batch copy of `cards`. The service writes a card's device in the card's transaction.
    op.add_column("cards", sa.Column("device_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_cards_device_id"), "cards", ["device_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_cards_device_id"), table_name="cards")
    op.drop_column("cards", "device_id")
    op.drop_table("model_devices")
