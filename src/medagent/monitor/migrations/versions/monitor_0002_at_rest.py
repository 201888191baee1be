"""Encryption at rest of dead letters: per-row data keys wrapped under a named KEK."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0002_at_rest"
down_revision = "monitor_0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `kek_id` (indexed; NULL = plaintext row) and `wrapped_key` to the dead letters."""
    op.add_column("monitor_dead_letter", sa.Column("kek_id", sa.String(64), nullable=True))
    op.add_column("monitor_dead_letter", sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
    op.create_index("ix_monitor_dead_letter_kek", "monitor_dead_letter", ["kek_id"])


def downgrade() -> None:
    """Drop the key columns (only safe once every row is plaintext again)."""
    op.drop_index("ix_monitor_dead_letter_kek", "monitor_dead_letter")
    with op.batch_alter_table("monitor_dead_letter") as batch:
        batch.drop_column("wrapped_key")
        batch.drop_column("kek_id")
