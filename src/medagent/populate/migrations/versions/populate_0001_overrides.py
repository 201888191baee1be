"""Population schema: clinician overrides of scale inputs, per patient and scale."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "populate_0001_overrides"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the override table and its look-up index."""
    op.create_table(
        "populate_override",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("scale_id", sa.String(64), nullable=False),
        sa.Column("input_id", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("entered_by", sa.String(255), nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_populate_override_lookup",
        "populate_override",
        ["patient_id", "scale_id", "input_id"],
    )


def downgrade() -> None:
    """Drop the override table."""
    op.drop_index("ix_populate_override_lookup", table_name="populate_override")
    op.drop_table("populate_override")
