"""Engagement: click counts per mail and link, clicked copies, readers' clicks (per-reader
tracking), webhooks and their queue; a reader's tracking opt-out, list hygiene per newsletter,
UTM parameters per newsletter, and when an edition's or alert's mail was all sent.

New tables and nullable (or defaulted) columns only; the downgrade drops exactly those.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
import sqlmodel
from alembic import op

import digest.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = digest.models.UTCDateTime(timezone=True)
_COUNTED = "subscriptions_counted_update"


def _counts_migration() -> ModuleType:
    """Migration 0011, whose triggers keep the list's counts: one of them learns a status."""
    path = Path(__file__).with_name("0011_subscription_counts.py")
    spec = importlib.util.spec_from_file_location("digest_migration_0011", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _remake_counted_update(gone: str) -> None:
    """Readers retired by list hygiene (``inactive``) leave the per-day counts like those who
    unsubscribe; a retired reader coming back already counts as joining."""
    m = _counts_migration()
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, timing, when, statements in m._triggers(postgres, gone):
        if name == _COUNTED:
            m.drop_trigger(postgres, name, table)
            m.create_trigger(postgres, name, table, timing, when, statements)


_GONE = "('unsubscribed', 'bounced', 'complained', 'inactive')"


def _s(n: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=n)


_COLUMNS = (
    ("newsletters", sa.Column("utm", sa.Boolean(), nullable=False, server_default=sa.true())),
    ("newsletters", sa.Column("hygiene_digests", sa.Integer(), nullable=True)),
    ("newsletters", sa.Column("hygiene_weeks", sa.Integer(), nullable=True)),
    ("newsletters", sa.Column("hygiene_grace_days", sa.Integer(), nullable=True)),
    (
        "subscribers",
        sa.Column("tracking_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()),
    ),
    ("subscriptions", sa.Column("last_click_at", _TS, nullable=True)),
    ("subscriptions", sa.Column("repermission_sent_at", _TS, nullable=True)),
    ("editions", sa.Column("completed_at", _TS, nullable=True)),
    ("bodies", sa.Column("tracked_text", sa.Text(), nullable=True)),
    ("bodies", sa.Column("tracked_html", sa.Text(), nullable=True)),
    ("alerts", sa.Column("completed_at", _TS, nullable=True)),
    ("announcements", sa.Column("completed_at", _TS, nullable=True)),
)


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.add_column(table, column)
    _remake_counted_update(_GONE)
    op.create_table(
        "click_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mail", _s(16), nullable=False),
        sa.Column("url_key", _s(32), nullable=False),
        sa.Column("url", _s(2048), nullable=False),
        sa.Column("copy_tag", _s(16), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", _s(8), nullable=False),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("proxy", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_click_events_at", "click_events", ["at"])
    op.create_index("ix_click_events_copy", "click_events", ["mail", "copy_tag"])
    op.create_table(
        "tracking_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mode", _s(16), nullable=False),
        sa.Column("since", _TS, nullable=False),
    )
    op.create_table(
        "link_clicks",
        sa.Column("mail", _s(16), primary_key=True),
        sa.Column("url_key", _s(32), primary_key=True),
        sa.Column("url", _s(2048), nullable=False),
        sa.Column("human", sa.Integer(), nullable=False),
        sa.Column("machine", sa.Integer(), nullable=False),
        sa.Column("first_at", _TS, nullable=True),
        sa.Column("last_at", _TS, nullable=True),
    )
    op.create_table(
        "mail_copies",
        sa.Column("mail", _s(16), primary_key=True),
        sa.Column("copy_tag", _s(16), primary_key=True),
        sa.Column("human_click_at", _TS, nullable=True),
        sa.Column("machine_click_at", _TS, nullable=True),
        sa.Column("opened_at", _TS, nullable=True),
        sa.Column("proxy_open_at", _TS, nullable=True),
    )
    op.create_table(
        "reader_clicks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "subscriber_id",
            sa.Integer(),
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("mail", _s(16), nullable=False),
        sa.Column("url", _s(2048), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("machine", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_reader_clicks_reader", "reader_clicks", ["subscriber_id", "at"])
    op.create_index("ix_reader_clicks_mail", "reader_clicks", ["mail"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", _s(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", _s(100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "webhook_id",
            sa.Integer(),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", _s(64), nullable=False),
        sa.Column("type", _s(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("status", _s(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_expires_at", _TS, nullable=True),
        sa.Column("last_error", _s(1000), nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    _remake_counted_update(_counts_migration()._GONE)
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_index("ix_reader_clicks_mail", table_name="reader_clicks")
    op.drop_index("ix_reader_clicks_reader", table_name="reader_clicks")
    op.drop_table("reader_clicks")
    op.drop_table("mail_copies")
    op.drop_table("link_clicks")
    op.drop_table("tracking_state")
    op.drop_index("ix_click_events_copy", table_name="click_events")
    op.drop_index("ix_click_events_at", table_name="click_events")
    op.drop_table("click_events")
    # Plain DROP COLUMN (SQLite 3.35+), not a batch rebuild, which would drop the triggers
    # migration 0011 keeps on subscriptions and subscribers.
    for table, column in reversed(_COLUMNS):
        op.drop_column(table, column.name)
