"""Counts of the list kept by the store itself: subscriptions by newsletter and status, per day
the readers each newsletter gained and lost, and active readers by slot (newsletter, cadence,
zone, send hour), maintained by triggers on ``subscriptions`` and ``subscribers``.

The desk's Today page must not count a list of a million readers on every view (issue 14): it
reads these few rows instead. Triggers, not application code, keep them, so every write path
(signup, import, the bounce handler, erasure, an operator's SQL) keeps them right.

Each change appends a row of differences (+1 here, -1 there) rather than updating one row per
count: an import of 100,000 readers in one transaction would otherwise update the same row
100,000 times, and PostgreSQL walks every earlier version of that row on each update (the
import becomes quadratic), while concurrent signups would queue on that row's lock. Readers
sum the rows; ``list_counts.compact`` folds them back into one row per key now and then.

The upgrade fills the tables from the rows already stored; the downgrade drops the triggers,
PostgreSQL's trigger functions and the tables.

A day is the UTC date of the row's ``updated_at`` (every status change stamps it), or of the
deletion. Joined: a row inserted active or becoming active. Left: an active row becoming
unsubscribed, bounced or complained, or deleted.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_GONE = "('unsubscribed', 'bounced', 'complained')"
_COUNTS = "INSERT INTO subscription_counts (newsletter_id, status, n)"
_DAYS = "INSERT INTO subscription_days (day, newsletter_id, joined, departed)"
_SLOTS = "INSERT INTO subscription_slots (newsletter_id, cadence, timezone, send_hour, n)"


def _day(column: str, postgres: bool) -> str:
    """The UTC day of a timestamp column (SQLite keeps 'YYYY-MM-DD HH:MM:SS' in UTC)."""
    return f"({column} AT TIME ZONE 'UTC')::date" if postgres else f"substr({column}, 1, 10)"


def _differs(a: str, b: str, postgres: bool) -> str:
    return f"{a} IS DISTINCT FROM {b}" if postgres else f"{a} IS NOT {b}"


def _slot(row: str, n: int, when: str) -> str:
    """``row``'s subscription counted ``n`` in its subscriber's slot, when ``when`` holds."""
    return (
        f"{_SLOTS} SELECT {row}.newsletter_id, {row}.cadence, s.timezone, s.send_hour, {n}"  # noqa: S608
        f" FROM subscribers s WHERE s.id = {row}.subscriber_id AND {when};"
    )


def _moved(row: str, sign: str) -> str:
    """A subscriber's active subscriptions counted ``sign`` in ``row``'s zone and hour."""
    return (
        f"{_SLOTS} SELECT u.newsletter_id, u.cadence, {row}.timezone, {row}.send_hour,"  # noqa: S608
        f" {sign}count(*) FROM subscriptions u WHERE u.subscriber_id = {row}.id"
        " AND u.status = 'active' GROUP BY u.newsletter_id, u.cadence;"
    )


def _triggers(pg: bool, gone: str = _GONE) -> list[tuple[str, str, str, str, list[str]]]:
    """(name, table, when it fires, condition, statements) of every trigger; ``gone``: the
    statuses whose coming from active counts as leaving (migration 0014 adds one)."""
    changed = " OR ".join(
        _differs(f"OLD.{c}", f"NEW.{c}", pg)
        for c in ("status", "newsletter_id", "cadence", "subscriber_id")
    )
    moved = " OR ".join(_differs(f"OLD.{c}", f"NEW.{c}", pg) for c in ("timezone", "send_hour"))
    counted = " OR ".join(_differs(f"OLD.{c}", f"NEW.{c}", pg) for c in ("status", "newsletter_id"))
    new_day, today = (
        _day("NEW.updated_at", pg),
        ("(now() AT TIME ZONE 'UTC')::date" if pg else "date('now')"),
    )
    return [
        ("subscriptions_counted_insert", "subscriptions", "AFTER INSERT", "", [
            f"{_COUNTS} VALUES (NEW.newsletter_id, NEW.status, 1);",
            f"{_DAYS} SELECT {new_day}, NEW.newsletter_id, 1, 0 WHERE NEW.status = 'active';",
            _slot("NEW", 1, "NEW.status = 'active'"),
        ]),
        (
            "subscriptions_counted_update",
            "subscriptions",
            "AFTER UPDATE OF status, newsletter_id, cadence, subscriber_id",
            changed,
            [
                f"{_COUNTS} SELECT OLD.newsletter_id, OLD.status, -1 WHERE {counted};",
                f"{_COUNTS} SELECT NEW.newsletter_id, NEW.status, 1 WHERE {counted};",
                f"{_DAYS} SELECT {new_day}, NEW.newsletter_id, 1, 0"
                " WHERE NEW.status = 'active' AND OLD.status <> 'active';",
                f"{_DAYS} SELECT {new_day}, NEW.newsletter_id, 0, 1"
                f" WHERE OLD.status = 'active' AND NEW.status IN {gone};",
                _slot("OLD", -1, "OLD.status = 'active'"),
                _slot("NEW", 1, "NEW.status = 'active'"),
            ],
        ),
        ("subscriptions_counted_delete", "subscriptions", "AFTER DELETE", "", [
            f"{_COUNTS} VALUES (OLD.newsletter_id, OLD.status, -1);",
            f"{_DAYS} SELECT {today}, OLD.newsletter_id, 0, 1 WHERE OLD.status = 'active';",
            _slot("OLD", -1, "OLD.status = 'active'"),
        ]),
        # A zone or hour change moves the person's active subscriptions between slots.
        ("subscribers_counted_update", "subscribers", "AFTER UPDATE OF timezone, send_hour",
         moved, [_moved("OLD", "-"), _moved("NEW", "")]),
        # Deleting a person deletes their subscriptions first, while the person is still there
        # to say which slot they were in (the foreign key's cascade would come after).
        ("subscribers_counted_delete", "subscribers", "BEFORE DELETE", "", [
            "DELETE FROM subscriptions WHERE subscriber_id = OLD.id;",
        ]),
    ]  # fmt: skip


def _backfill(postgres: bool) -> None:
    op.execute(
        f"{_COUNTS} SELECT newsletter_id, status, count(*) FROM subscriptions"  # noqa: S608
        " GROUP BY newsletter_id, status"
    )
    op.execute(
        f"{_SLOTS} SELECT u.newsletter_id, u.cadence, s.timezone, s.send_hour, count(*)"  # noqa: S608
        " FROM subscriptions u JOIN subscribers s ON s.id = u.subscriber_id"
        " WHERE u.status = 'active' GROUP BY u.newsletter_id, u.cadence, s.timezone, s.send_hour"
    )
    # Readers now active joined when they last became active; readers who left, when they
    # were last changed. Earlier comings and goings are kept nowhere, so are not counted.
    joined = _day("coalesce(active_since, confirmed_at, created_at)", postgres)
    left = _day("coalesce(unsubscribed_at, updated_at)", postgres)
    op.execute(
        f"{_DAYS} SELECT d, newsletter_id, sum(j), sum(l) FROM ("  # noqa: S608
        f"  SELECT {joined} AS d, newsletter_id, 1 AS j, 0 AS l FROM subscriptions"
        "   WHERE status = 'active'"
        "  UNION ALL"
        f"  SELECT {left} AS d, newsletter_id, 0 AS j, 1 AS l FROM subscriptions"
        f"   WHERE status IN {_GONE} AND confirmed_at IS NOT NULL"
        " ) AS changes GROUP BY d, newsletter_id"
    )


def upgrade() -> None:
    op.create_table(
        "subscription_counts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_table(
        "subscription_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("joined", sa.Integer(), nullable=False),
        sa.Column("departed", sa.Integer(), nullable=False),
    )
    op.create_index("ix_subscription_days_day", "subscription_days", ["day"])
    op.create_table(
        "subscription_slots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("cadence", _STR(length=16), nullable=False),
        sa.Column("timezone", _STR(length=64), nullable=False),
        sa.Column("send_hour", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    # Filled before the triggers exist, with writers kept out meanwhile (PostgreSQL; SQLite's
    # migration holds the write lock), so nothing is counted twice or missed.
    if postgres:
        op.execute("LOCK TABLE subscriptions, subscribers IN SHARE ROW EXCLUSIVE MODE")
    _backfill(postgres)
    for trigger in _triggers(postgres):
        create_trigger(postgres, *trigger)


def create_trigger(
    postgres: bool, name: str, table: str, timing: str, when: str, statements: list[str]
) -> None:
    """One trigger (and on PostgreSQL its function); migration 0014 remakes one with this."""
    body = " ".join(statements)
    if postgres:
        back = "OLD" if timing.startswith("BEFORE") else "NULL"
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {body} RETURN {back}; END; $$"
        )
        condition = f" WHEN ({when})" if when else ""
        op.execute(
            f"CREATE TRIGGER {name} {timing} ON {table} FOR EACH ROW{condition}"
            f" EXECUTE FUNCTION {name}()"
        )
    else:
        condition = f" WHEN {when}" if when else ""
        op.execute(f"CREATE TRIGGER {name} {timing} ON {table}{condition} BEGIN {body} END")


def drop_trigger(postgres: bool, name: str, table: str) -> None:
    """One trigger and on PostgreSQL its function."""
    op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, *_ in _triggers(postgres):
        drop_trigger(postgres, name, table)
    op.drop_table("subscription_slots")
    op.drop_index("ix_subscription_days_day", table_name="subscription_days")
    op.drop_table("subscription_days")
    op.drop_table("subscription_counts")
