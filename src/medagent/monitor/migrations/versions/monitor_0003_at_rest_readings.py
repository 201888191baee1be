"""Encryption at rest of readings and alerts: per-row data keys wrapped under a named KEK."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0003_at_rest_readings"
down_revision = "monitor_0002_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `kek_id` (indexed; NULL = plaintext row) and `wrapped_key` to readings and alerts, and
    `value_sealed` (the encrypted number) to readings.

    The sealed text columns become unbounded text (they hold encrypted tokens now). Existing rows
    stay plaintext until `medagent store encrypt` encrypts them in resumable batches.
    """
    for table in ("monitor_observation", "monitor_alert"):
        op.add_column(table, sa.Column("kek_id", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
        op.create_index(f"ix_{table}_kek", table, ["kek_id"])
    op.add_column("monitor_observation", sa.Column("value_sealed", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce VARCHAR lengths
        for column in ("value_code", "unit", "original"):
            op.alter_column("monitor_observation", column, type_=sa.Text())
        op.alter_column("monitor_alert", "summary", type_=sa.Text())


def downgrade() -> None:
    """Drop the key columns (only safe once every row is plaintext again)."""
    for table in ("monitor_observation", "monitor_alert"):
        op.drop_index(f"ix_{table}_kek", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("wrapped_key")
            batch.drop_column("kek_id")
    with op.batch_alter_table("monitor_observation") as batch:
        batch.drop_column("value_sealed")
