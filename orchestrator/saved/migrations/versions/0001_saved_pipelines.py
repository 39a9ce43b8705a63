"""Saved pipelines and their versions, schedules and their ticks, idempotency keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("deleted_at", WHEN, nullable=True),
    )
    op.create_table(
        "pipeline_versions",
        sa.Column("pipeline", sa.String(64), sa.ForeignKey("pipelines.name"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("pipeline", sa.String(64), sa.ForeignKey("pipelines.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("arguments", sa.JSON, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("active_since", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "schedule_ticks",
        sa.Column(
            "schedule_id",
            sa.String(36),
            sa.ForeignKey("schedules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tick_at", WHEN, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.JSON, nullable=False),
        sa.Column("recorded_at", WHEN, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("claimed_at", WHEN, nullable=False),
        sa.UniqueConstraint("key", name="uq_idempotency_keys_key"),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "schedule_ticks", "schedules", "pipeline_versions"):
        op.drop_table(table)
    op.drop_table("pipelines")
