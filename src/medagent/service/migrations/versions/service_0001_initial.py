"""Service schema: assessments, CDS Hooks feedback, seen CDS JWT ids, used patient links."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "service_0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the four service tables."""
    op.create_table(
        "service_assessment",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("scale_id", sa.String(64), nullable=False),
        sa.Column("scale_version", sa.String(32), nullable=False),
        sa.Column("scale_definition", sa.Text(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("provenance", sa.Text(), nullable=False),
        sa.Column("overrides", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("display", sa.String(64), nullable=False),
        sa.Column("band", sa.String(255), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("questionnaire_response", sa.Text(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_service_assessment_patient",
        "service_assessment",
        ["patient_id", "scale_id", "created_at"],
    )
    op.create_table(
        "service_cds_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("card", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "service_cds_jti",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "service_link_use",
        sa.Column("link_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the service tables."""
    op.drop_table("service_link_use")
    op.drop_table("service_cds_jti")
    op.drop_table("service_cds_feedback")
    op.drop_index("ix_service_assessment_patient", table_name="service_assessment")
    op.drop_table("service_assessment")
