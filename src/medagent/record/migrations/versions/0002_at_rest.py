"""Encryption at rest: each resource row keeps its data key, wrapped under a named KEK."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_at_rest"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add `kek_id` (indexed; NULL = plaintext row) and `wrapped_key`; existing rows stay as is.

    Existing rows are not rewritten here (a migration runs whenever a store is opened and must
    stay quick): `medagent store encrypt` encrypts them in resumable batches.
    """
    op.add_column("fhir_resource", sa.Column("kek_id", sa.String(64), nullable=True))
    op.add_column("fhir_resource", sa.Column("wrapped_key", sa.LargeBinary(), nullable=True))
    op.create_index("ix_fhir_resource_kek", "fhir_resource", ["kek_id"])


def downgrade() -> None:
    """Drop the key columns (only safe once every row is plaintext again)."""
    op.drop_index("ix_fhir_resource_kek", "fhir_resource")
    with op.batch_alter_table("fhir_resource") as batch:
        batch.drop_column("wrapped_key")
        batch.drop_column("kek_id")
