"""Initial record schema: FHIR resources with indexed look-up columns, and their codes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the resource and code tables with their indexes."""
    op.create_table(
        "fhir_resource",
        sa.Column("resource_type", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("time_start", sa.DateTime(), nullable=True),
        sa.Column("time_end", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(64), nullable=True),
        sa.Column("clinical_status", sa.String(64), nullable=True),
        sa.Column("verification_status", sa.String(64), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_fhir_resource_patient", "fhir_resource", ["patient_id", "resource_type"])
    op.create_index("ix_fhir_resource_updated", "fhir_resource", ["last_updated"])
    op.create_table(
        "fhir_code",
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("code", sa.String(128), nullable=False),
        sa.Column("component", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_type", "resource_id"],
            ["fhir_resource.resource_type", "fhir_resource.id"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_fhir_code_lookup", "fhir_code", ["system", "code", "resource_type"])
    op.create_index("ix_fhir_code_resource", "fhir_code", ["resource_type", "resource_id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("fhir_code")
    op.drop_table("fhir_resource")
