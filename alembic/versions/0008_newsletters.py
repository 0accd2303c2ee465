"""Newsletters: today's single list becomes newsletter 1, each subscriber's place on it a
subscription.

The person (address, name, zone, send hour) stays in ``subscribers``; what belongs to their
place on a list (status, cadence, topics, consent, digest history) moves to ``subscriptions``.
Newsletter 1 is named from ``DIGEST_SITE_NAME``. The once-keys of deliveries and the keys of
editions gain the newsletter ("1/daily:2026-11-29"), so the one-digest-per-period key holds per
newsletter. Message-IDs and link tokens name (edition, subscriber) and the subscriber, which
keep their ids: every one already sent stays valid.

Columns are dropped and added with plain ALTER TABLE (SQLite 3.35+): a batch rebuild of
``subscribers`` would cascade into the deliveries (see 0006). The downgrade is refused once a
second newsletter exists: its readers have nowhere to go in the old schema.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import digest.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = digest.models.UTCDateTime(timezone=True)
_STR = sqlmodel.sql.sqltypes.AutoString
# The columns that move, in the order of the old table.
_MOVED = (
    "status",
    "cadence",
    "topics",
    "consent_at",
    "consent_ip",
    "consent_user_agent",
    "consent_source",
    "consent_wording",
    "created_at",
    "updated_at",
    "confirmed_at",
    "unsubscribed_at",
    "last_digest_at",
    "active_since",
)
_DROPPED = tuple(c for c in _MOVED if c not in ("created_at", "updated_at"))


def _site_name() -> str:
    """``DIGEST_SITE_NAME`` as the settings read it (environment or ``.env``)."""
    try:
        from digest.config import load_settings

        return load_settings().site_name or "digest"
    except Exception:  # a bare `alembic upgrade` with other settings unset or bad
        import os

        return os.environ.get("DIGEST_SITE_NAME", "") or "digest"


def slug_of(name: str) -> str:
    """A URL-safe slug made from a newsletter's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return slug or "news"


def _subscription_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("cadence", _STR(length=16), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("consent_at", _TS, nullable=True),
        sa.Column("consent_ip", _STR(length=64), nullable=True),
        sa.Column("consent_user_agent", _STR(length=512), nullable=True),
        sa.Column("consent_source", _STR(length=200), nullable=True),
        sa.Column("consent_wording", _STR(length=32), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("confirmed_at", _TS, nullable=True),
        sa.Column("unsubscribed_at", _TS, nullable=True),
        sa.Column("last_digest_at", _TS, nullable=True),
        sa.Column("active_since", _TS, nullable=True),
    ]


def upgrade() -> None:
    newsletters = op.create_table(
        "newsletters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", _STR(length=64), nullable=False),
        sa.Column("name", _STR(length=200), nullable=False),
        sa.Column("description", _STR(length=2000), nullable=False),
        sa.Column("cadences", sa.JSON(), nullable=False),
        sa.Column("default_cadence", _STR(length=16), nullable=False),
        sa.Column("send_hour", sa.Integer(), nullable=True),
        sa.Column("weekly_day", _STR(length=16), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("featured_categories", sa.JSON(), nullable=True),
        sa.Column("templates_dir", _STR(length=1000), nullable=True),
        sa.Column("sender", _STR(length=500), nullable=True),
        sa.Column("reply_to", _STR(length=320), nullable=True),
        sa.Column("list_id", _STR(length=200), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("former_slugs", sa.JSON(), nullable=False),
        sa.Column("archived_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    name = _site_name()
    now = digest.models.utcnow()
    op.bulk_insert(
        newsletters,
        [
            {
                "id": 1,
                "slug": slug_of(name),
                "name": name[:200],
                "description": "",
                "cadences": ["daily", "weekly"],
                "default_cadence": "daily",
                "topics": [],
                "public": True,
                "position": 0,
                "former_slugs": [],
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SELECT setval('newsletters_id_seq', (SELECT max(id) FROM newsletters))")
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        *_subscription_columns(),
        sa.ForeignKeyConstraint(["newsletter_id"], ["newsletters.id"]),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "newsletter_id", name="uq_subscriptions_reader"),
    )
    op.create_index(
        "ix_subscriptions_slot", "subscriptions", ["newsletter_id", "cadence", "status"]
    )
    op.create_index("ix_subscriptions_status", "subscriptions", ["status"])
    moved = ", ".join(_MOVED)  # the module's own column names, no input
    insert = f"INSERT INTO subscriptions (subscriber_id, newsletter_id, {moved}) "
    op.execute(insert + f"SELECT id, 1, {moved} FROM subscribers")  # noqa: S608
    op.drop_index("ix_subscribers_slot", table_name="subscribers")
    op.drop_index("ix_subscribers_status", table_name="subscribers")
    for column in _DROPPED:
        op.drop_column("subscribers", column)
    op.create_index("ix_subscribers_zone_hour", "subscribers", ["timezone", "send_hour"])

    op.add_column(
        "editions", sa.Column("newsletter_id", sa.Integer(), nullable=False, server_default="1")
    )
    op.create_index("ix_editions_newsletter_id", "editions", ["newsletter_id"])
    op.execute("UPDATE editions SET key = '1/' || key")
    op.execute("UPDATE deliveries SET period_key = '1/' || period_key WHERE period_key IS NOT NULL")
    # An editor's feature applies to every newsletter unless it names some ([]: every one).
    op.add_column("posts", sa.Column("featured_in", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    bind = op.get_bind()
    count = bind.execute(sa.text("SELECT count(*) FROM newsletters")).scalar_one()
    if count > 1:
        raise RuntimeError(
            f"cannot go below 0008: there are {count} newsletters and the old schema has one; "
            "archive is not enough, their subscriptions would be lost"
        )
    op.drop_index("ix_subscribers_zone_hour", table_name="subscribers")
    defaults = {"status": "'pending'", "cadence": "'daily'", "topics": "'[]'"}
    for column in _subscription_columns():
        if column.name in _DROPPED:
            default = defaults.get(column.name)
            op.add_column(
                "subscribers",
                sa.Column(
                    column.name,
                    column.type,
                    nullable=column.nullable,
                    server_default=sa.text(default) if default else None,
                ),
            )
    for column in _DROPPED:
        op.execute(
            f"UPDATE subscribers SET {column} = (SELECT s.{column} FROM subscriptions s "  # noqa: S608
            f"WHERE s.subscriber_id = subscribers.id AND s.newsletter_id = 1) "
            f"WHERE EXISTS (SELECT 1 FROM subscriptions s WHERE s.subscriber_id = subscribers.id "
            f"AND s.newsletter_id = 1)"
        )
    op.create_index("ix_subscribers_slot", "subscribers", ["cadence", "timezone", "send_hour"])
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.drop_index("ix_subscriptions_status", table_name="subscriptions")
    op.drop_index("ix_subscriptions_slot", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_editions_newsletter_id", table_name="editions")
    op.drop_column("editions", "newsletter_id")
    op.execute("UPDATE editions SET key = substr(key, 3) WHERE key LIKE '1/%'")
    # Once-keys other than a period's ("1/welcome") have no place in the old schema.
    op.execute(
        "UPDATE deliveries SET period_key = CASE WHEN period_key LIKE '1/daily:%' "
        "OR period_key LIKE '1/weekly:%' THEN substr(period_key, 3) ELSE NULL END "
        "WHERE period_key IS NOT NULL"
    )
    op.drop_column("posts", "featured_in")
    op.drop_table("newsletters")
