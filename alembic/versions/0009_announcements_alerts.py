"""Announcements and the breaking-news lane: the ``announcements`` and ``alerts`` tables, each
newsletter's alert settings, and each subscription's opt-in to alerts (off for everyone).

Only new tables and added columns: nothing already stored changes, and the downgrade drops
exactly what this adds.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import digest.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = digest.models.UTCDateTime(timezone=True)
_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.add_column(
        "subscriptions",
        sa.Column("alerts", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "newsletters", sa.Column("alerts", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("newsletters", sa.Column("alert_budget", sa.Integer(), nullable=True))
    op.add_column("newsletters", sa.Column("quiet_hours", _STR(length=16), nullable=True))
    op.add_column("newsletters", sa.Column("alert_expiry_hours", sa.Float(), nullable=True))
    op.add_column("newsletters", sa.Column("alert_categories", sa.JSON(), nullable=True))
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("newsletter_id", sa.Integer(), sa.ForeignKey("newsletters.id"), nullable=False),
        sa.Column("subject", _STR(length=998), nullable=False),
        sa.Column("body_markdown", sa.Text(), nullable=False),
        sa.Column("template", _STR(length=100), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("cadence", _STR(length=16), nullable=True),
        sa.Column("joined_after", _TS, nullable=True),
        sa.Column("joined_before", _TS, nullable=True),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("send_at", _TS, nullable=True),
        sa.Column("local_hour", sa.Integer(), nullable=True),
        sa.Column("local_date", _STR(length=10), nullable=True),
        sa.Column(
            "body_id", sa.Integer(), sa.ForeignKey("bodies.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("queued_at", _TS, nullable=True),
        sa.Column("cancelled_at", _TS, nullable=True),
    )
    op.create_index("ix_announcements_status", "announcements", ["status"])
    op.create_index("ix_announcements_send_at", "announcements", ["send_at"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("newsletter_id", sa.Integer(), sa.ForeignKey("newsletters.id"), nullable=False),
        sa.Column(
            "post_id", sa.Integer(), sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("source", _STR(length=16), nullable=False),
        sa.Column("raised_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column(
            "body_id", sa.Integer(), sa.ForeignKey("bodies.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("held_budget", sa.Integer(), nullable=False),
        sa.Column("held_quiet", sa.Integer(), nullable=False),
        sa.UniqueConstraint("newsletter_id", "post_id", name="uq_alerts_newsletter_post"),
    )
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_raised_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_announcements_send_at", table_name="announcements")
    op.drop_index("ix_announcements_status", table_name="announcements")
    op.drop_table("announcements")
    for column in ("alert_categories", "alert_expiry_hours", "quiet_hours", "alert_budget"):
        op.drop_column("newsletters", column)
    op.drop_column("newsletters", "alerts")
    op.drop_column("subscriptions", "alerts")
