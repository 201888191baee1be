"""Monitor schema: observations, dead letters, alerts and ward placement."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the monitor's tables."""
    op.create_table(
        "monitor_observation",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(255), nullable=False, unique=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("loinc", sa.String(32), nullable=False),
        sa.Column("value_num", sa.Float(), nullable=True),
        sa.Column("value_code", sa.String(64), nullable=True),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("original", sa.String(128), nullable=True),
        sa.Column("effective", sa.DateTime(), nullable=False),
        sa.Column("received", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("worker", sa.String(64), nullable=True),
    )
    op.create_index("ix_monitor_observation_patient", "monitor_observation", ["patient_id", "seq"])
    op.create_table(
        "monitor_dead_letter",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("received", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
    )
    op.create_table(
        "monitor_alert",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("open_key", sa.String(255), nullable=True, unique=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("summary", sa.String(255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("source_label", sa.String(255), nullable=False),
        sa.Column("source_url", sa.String(512), nullable=True),
        sa.Column("scale_id", sa.String(64), nullable=True),
        sa.Column("scale_version", sa.String(32), nullable=True),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_monitor_alert_patient", "monitor_alert", ["patient_id", "status"])
    op.create_table(
        "monitor_patient",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("ward", sa.String(64), nullable=True),
        sa.Column("bed", sa.String(64), nullable=True),
        sa.Column("updated", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop the monitor's tables."""
    op.drop_table("monitor_patient")
    op.drop_index("ix_monitor_alert_patient", table_name="monitor_alert")
    op.drop_table("monitor_alert")
    op.drop_table("monitor_dead_letter")
    op.drop_index("ix_monitor_observation_patient", table_name="monitor_observation")
    op.drop_table("monitor_observation")
