"""Encryption at rest of clinician overrides: per-row data keys wrapped under a named KEK."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "populate_0002_at_rest"
down_revision = "populate_0001_overrides"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `kek_id` (indexed; NULL = plaintext row) and `wrapped_key` to the overrides.

    Existing rows stay plaintext until `medagent store encrypt` encrypts them in resumable batches.
    """
    op.add_column("populate_override", sa.Column("kek_id", sa.String(64), nullable=True))
    op.add_column("populate_override", sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
    op.create_index("ix_populate_override_kek", "populate_override", ["kek_id"])


def downgrade() -> None:
    """Drop the key columns (only safe once every row is plaintext again)."""
    op.drop_index("ix_populate_override_kek", "populate_override")
    with op.batch_alter_table("populate_override") as batch:
        batch.drop_column("wrapped_key")
        batch.drop_column("kek_id")
