"""Encryption at rest of assessments and CDS feedback: per-row data keys wrapped under a KEK."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "service_0002_at_rest"
down_revision = "service_0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `kek_id` (indexed; NULL = plaintext row), `wrapped_key`, and `value_sealed`.

    `display` and `band` become unbounded text (they hold encrypted tokens now). Existing rows
    stay plaintext until `medagent store encrypt` encrypts them in resumable batches.
    """
    for table in ("service_assessment", "service_cds_feedback"):
        op.add_column(table, sa.Column("kek_id", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
        op.create_index(f"ix_{table}_kek", table, ["kek_id"])
    op.add_column("service_assessment", sa.Column("value_sealed", sa.Text(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce VARCHAR lengths
        op.alter_column("service_assessment", "display", type_=sa.Text())
        op.alter_column("service_assessment", "band", type_=sa.Text())


def downgrade() -> None:
    """Drop the key columns (only safe once every row is plaintext again)."""
    for table in ("service_assessment", "service_cds_feedback"):
        op.drop_index(f"ix_{table}_kek", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("wrapped_key")
            batch.drop_column("kek_id")
    with op.batch_alter_table("service_assessment") as batch:
        batch.drop_column("value_sealed")
