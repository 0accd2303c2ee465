"""Counts of the list kept by the store itself: subscriptions by newsletter and status, per day
the readers each newsletter gained and lost, and active readers by slot (newsletter, cadence,
zone, send hour), maintained by triggers on ``subscriptions`` and ``subscribers``.

The desk's Today page must not count a list of a million readers on every view (issue 14): it
reads these few rows instead. Triggers, not application code, keep them, so every write path
(signup, import, the bounce handler, erasure's cascade, an operator's SQL) keeps them right.
The upgrade fills both tables from the rows already stored; the downgrade drops the triggers,
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
_TRIGGERS = (
    "subscriptions_counted_insert",
    "subscriptions_counted_update",
    "subscriptions_counted_delete",
)

# PostgreSQL: one plpgsql function for the three triggers. Both count rows of an update are
# upserted in one statement in key order, so two single-row transactions never lock them in
# opposite orders (no deadlock between a confirmation and an unsubscription).
_PG_FUNCTION = """
CREATE FUNCTION subscriptions_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO subscription_counts (newsletter_id, status, n)
      VALUES (NEW.newsletter_id, NEW.status, 1)
      ON CONFLICT (newsletter_id, status) DO UPDATE SET n = subscription_counts.n + 1;
    IF NEW.status = 'active' THEN
      INSERT INTO subscription_days (day, newsletter_id, joined, departed)
        VALUES ((NEW.updated_at AT TIME ZONE 'UTC')::date, NEW.newsletter_id, 1, 0)
        ON CONFLICT (day, newsletter_id) DO UPDATE SET joined = subscription_days.joined + 1;
    END IF;
    RETURN NULL;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO subscription_counts (newsletter_id, status, n)
      VALUES (OLD.newsletter_id, OLD.status, -1)
      ON CONFLICT (newsletter_id, status) DO UPDATE SET n = subscription_counts.n - 1;
    IF OLD.status = 'active' THEN
      INSERT INTO subscription_days (day, newsletter_id, joined, departed)
        VALUES ((now() AT TIME ZONE 'UTC')::date, OLD.newsletter_id, 0, 1)
        ON CONFLICT (day, newsletter_id) DO UPDATE SET departed = subscription_days.departed + 1;
    END IF;
    RETURN NULL;
  END IF;
  INSERT INTO subscription_counts (newsletter_id, status, n)
    SELECT k.newsletter_id, k.status, k.n
    FROM (VALUES (OLD.newsletter_id, OLD.status::text, -1),
                 (NEW.newsletter_id, NEW.status::text, 1)) AS k (newsletter_id, status, n)
    ORDER BY k.newsletter_id, k.status
    ON CONFLICT (newsletter_id, status) DO UPDATE SET n = subscription_counts.n + excluded.n;
  IF NEW.status = 'active' AND OLD.status <> 'active' THEN
    INSERT INTO subscription_days (day, newsletter_id, joined, departed)
      VALUES ((NEW.updated_at AT TIME ZONE 'UTC')::date, NEW.newsletter_id, 1, 0)
      ON CONFLICT (day, newsletter_id) DO UPDATE SET joined = subscription_days.joined + 1;
  ELSIF OLD.status = 'active' AND NEW.status IN ('unsubscribed', 'bounced', 'complained') THEN
    INSERT INTO subscription_days (day, newsletter_id, joined, departed)
      VALUES ((NEW.updated_at AT TIME ZONE 'UTC')::date, NEW.newsletter_id, 0, 1)
      ON CONFLICT (day, newsletter_id) DO UPDATE SET departed = subscription_days.departed + 1;
  END IF;
  RETURN NULL;
END;
$$
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER subscriptions_counted_insert AFTER INSERT ON subscriptions"
    " FOR EACH ROW EXECUTE FUNCTION subscriptions_counted()",
    "CREATE TRIGGER subscriptions_counted_update AFTER UPDATE OF status, newsletter_id"
    " ON subscriptions FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status"
    " OR OLD.newsletter_id IS DISTINCT FROM NEW.newsletter_id)"
    " EXECUTE FUNCTION subscriptions_counted()",
    "CREATE TRIGGER subscriptions_counted_delete AFTER DELETE ON subscriptions"
    " FOR EACH ROW EXECUTE FUNCTION subscriptions_counted()",
)


def _bump(row: str, status: str, n: int) -> str:
    # Only this module's constant fragments go into these statements.
    return (
        "INSERT INTO subscription_counts (newsletter_id, status, n)"  # noqa: S608
        f" VALUES ({row}.newsletter_id, {status}, {n})"
        f" ON CONFLICT (newsletter_id, status) DO UPDATE SET n = n + ({n});"
    )


def _day(day: str, newsletter: str, column: str, when: str) -> str:
    # SELECT ... WHERE rather than VALUES: the WHERE also tells SQLite's parser where the
    # SELECT ends and the upsert clause begins.
    joined, departed = (1, 0) if column == "joined" else (0, 1)
    return (
        "INSERT INTO subscription_days (day, newsletter_id, joined, departed)"
        f" SELECT {day}, {newsletter}, {joined}, {departed} WHERE {when}"
        f" ON CONFLICT (day, newsletter_id) DO UPDATE SET {column} = {column} + 1;"
    )


# SQLite keeps timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the first ten characters are
# the day. Writers are serialised there, so the order of the upserts does not matter.
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER subscriptions_counted_insert AFTER INSERT ON subscriptions BEGIN "
    + _bump("NEW", "NEW.status", 1)
    + _day("substr(NEW.updated_at, 1, 10)", "NEW.newsletter_id", "joined", "NEW.status = 'active'")
    + " END",
    "CREATE TRIGGER subscriptions_counted_update AFTER UPDATE OF status, newsletter_id"
    " ON subscriptions WHEN OLD.status IS NOT NEW.status"
    " OR OLD.newsletter_id IS NOT NEW.newsletter_id BEGIN "
    + _bump("OLD", "OLD.status", -1)
    + _bump("NEW", "NEW.status", 1)
    + _day(
        "substr(NEW.updated_at, 1, 10)",
        "NEW.newsletter_id",
        "joined",
        "NEW.status = 'active' AND OLD.status <> 'active'",
    )
    + _day(
        "substr(NEW.updated_at, 1, 10)",
        "NEW.newsletter_id",
        "departed",
        f"OLD.status = 'active' AND NEW.status IN {_GONE}",
    )
    + " END",
    "CREATE TRIGGER subscriptions_counted_delete AFTER DELETE ON subscriptions BEGIN "
    + _bump("OLD", "OLD.status", -1)
    + _day("date('now')", "OLD.newsletter_id", "departed", "OLD.status = 'active'")
    + " END",
)


# Active readers by (newsletter, cadence, zone, send hour): the Today page's next editions.
# The zone and hour are the subscriber's, so ``subscribers`` has triggers too: a change of zone
# or hour moves their active subscriptions between slots, and deleting a subscriber first
# deletes their subscriptions (while the subscriber is still there to say which slot they
# were in) instead of leaving it to the foreign key's cascade.
_SLOT_KEY = "(newsletter_id, cadence, timezone, send_hour)"
_SLOT_UPSERT = f" ON CONFLICT {_SLOT_KEY} DO UPDATE SET n = subscription_slots.n + excluded.n;"


def _slot(row: str, n: int) -> str:
    """``row``'s subscription (active) counted ``n`` in its subscriber's slot."""
    return (
        f"INSERT INTO subscription_slots {_SLOT_KEY[:-1]}, n)"  # noqa: S608
        f" SELECT {row}.newsletter_id, {row}.cadence, s.timezone, s.send_hour, {n}"
        f" FROM subscribers s WHERE s.id = {row}.subscriber_id" + _SLOT_UPSERT
    )


def _moved(row: str, sign: str) -> str:
    """A subscriber's active subscriptions counted ``sign`` in ``row``'s zone and hour."""
    return (
        f"INSERT INTO subscription_slots {_SLOT_KEY[:-1]}, n)"  # noqa: S608
        f" SELECT u.newsletter_id, u.cadence, {row}.timezone, {row}.send_hour, {sign}count(*)"
        f" FROM subscriptions u WHERE u.subscriber_id = {row}.id AND u.status = 'active'"
        " GROUP BY u.newsletter_id, u.cadence" + _SLOT_UPSERT
    )


_SLOT_CHANGE = (
    "OLD.status IS DISTINCT FROM NEW.status OR OLD.newsletter_id IS DISTINCT FROM"
    " NEW.newsletter_id OR OLD.cadence IS DISTINCT FROM NEW.cadence"
    " OR OLD.subscriber_id IS DISTINCT FROM NEW.subscriber_id"
)
_PERSON_CHANGE = (
    "OLD.timezone IS DISTINCT FROM NEW.timezone OR OLD.send_hour IS DISTINCT FROM NEW.send_hour"
)
_PG_SLOTS = (
    # Nested IFs: plpgsql does not promise to stop at the first false AND, and OLD is null in
    # an insert's trigger (NEW in a delete's).
    "CREATE FUNCTION subscriptions_slotted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP IN ('UPDATE', 'DELETE') THEN IF OLD.status = 'active' THEN "
    + _slot("OLD", -1)
    + " END IF; END IF; IF TG_OP IN ('UPDATE', 'INSERT') THEN IF NEW.status = 'active' THEN "
    + _slot("NEW", 1)
    + " END IF; END IF; RETURN NULL; END; $$",
    "CREATE FUNCTION subscribers_slotted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"  # noqa: S608
    " IF TG_OP = 'DELETE' THEN DELETE FROM subscriptions WHERE subscriber_id = OLD.id;"
    " RETURN OLD; END IF; " + _moved("OLD", "-") + _moved("NEW", "") + " RETURN NULL; END; $$",
    "CREATE TRIGGER subscriptions_slotted_insert AFTER INSERT ON subscriptions"
    " FOR EACH ROW WHEN (NEW.status = 'active') EXECUTE FUNCTION subscriptions_slotted()",
    "CREATE TRIGGER subscriptions_slotted_update AFTER UPDATE OF status, newsletter_id, cadence,"
    f" subscriber_id ON subscriptions FOR EACH ROW WHEN ({_SLOT_CHANGE})"
    " EXECUTE FUNCTION subscriptions_slotted()",
    "CREATE TRIGGER subscriptions_slotted_delete AFTER DELETE ON subscriptions"
    " FOR EACH ROW WHEN (OLD.status = 'active') EXECUTE FUNCTION subscriptions_slotted()",
    "CREATE TRIGGER subscribers_slotted_update AFTER UPDATE OF timezone, send_hour"
    f" ON subscribers FOR EACH ROW WHEN ({_PERSON_CHANGE}) EXECUTE FUNCTION subscribers_slotted()",
    "CREATE TRIGGER subscribers_slotted_delete BEFORE DELETE ON subscribers"
    " FOR EACH ROW EXECUTE FUNCTION subscribers_slotted()",
)
_SQLITE_SLOTS = (
    "CREATE TRIGGER subscriptions_slotted_insert AFTER INSERT ON subscriptions"
    " WHEN NEW.status = 'active' BEGIN " + _slot("NEW", 1) + " END",
    "CREATE TRIGGER subscriptions_slotted_update AFTER UPDATE OF status, newsletter_id, cadence,"
    f" subscriber_id ON subscriptions WHEN {_SLOT_CHANGE.replace('IS DISTINCT FROM', 'IS NOT')}"
    " BEGIN "
    + _slot("OLD", -1).replace(" WHERE ", " WHERE OLD.status = 'active' AND ", 1)
    + _slot("NEW", 1).replace(" WHERE ", " WHERE NEW.status = 'active' AND ", 1)
    + " END",
    "CREATE TRIGGER subscriptions_slotted_delete AFTER DELETE ON subscriptions"
    " WHEN OLD.status = 'active' BEGIN " + _slot("OLD", -1) + " END",
    "CREATE TRIGGER subscribers_slotted_update AFTER UPDATE OF timezone, send_hour"
    f" ON subscribers WHEN {_PERSON_CHANGE.replace('IS DISTINCT FROM', 'IS NOT')} BEGIN "
    + _moved("OLD", "-")
    + _moved("NEW", "")
    + " END",
    "CREATE TRIGGER subscribers_slotted_delete BEFORE DELETE ON subscribers"
    " BEGIN DELETE FROM subscriptions WHERE subscriber_id = OLD.id; END",
)
_SLOT_TRIGGERS = (
    ("subscriptions_slotted_insert", "subscriptions"),
    ("subscriptions_slotted_update", "subscriptions"),
    ("subscriptions_slotted_delete", "subscriptions"),
    ("subscribers_slotted_update", "subscribers"),
    ("subscribers_slotted_delete", "subscribers"),
)


def _backfill(postgres: bool) -> None:
    op.execute(
        "INSERT INTO subscription_counts (newsletter_id, status, n)"
        " SELECT newsletter_id, status, count(*) FROM subscriptions"
        " GROUP BY newsletter_id, status"
    )
    op.execute(
        "INSERT INTO subscription_slots (newsletter_id, cadence, timezone, send_hour, n)"
        " SELECT u.newsletter_id, u.cadence, s.timezone, s.send_hour, count(*)"
        " FROM subscriptions u JOIN subscribers s ON s.id = u.subscriber_id"
        " WHERE u.status = 'active' GROUP BY u.newsletter_id, u.cadence, s.timezone, s.send_hour"
    )

    def day(column: str) -> str:
        return f"({column} AT TIME ZONE 'UTC')::date" if postgres else f"substr({column}, 1, 10)"

    # History as well as the rows tell it: readers now active joined when they last became
    # active; readers who left, when they were last changed. Earlier comings and goings of
    # the same reader are not kept anywhere, so they are not counted.
    joined = day("coalesce(active_since, confirmed_at, created_at)")
    left = day("coalesce(unsubscribed_at, updated_at)")
    op.execute(
        "INSERT INTO subscription_days (day, newsletter_id, joined, departed)"  # noqa: S608
        " SELECT d, newsletter_id, sum(j), sum(l) FROM ("
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
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("newsletter_id", "status"),
    )
    op.create_table(
        "subscription_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("joined", sa.Integer(), nullable=False),
        sa.Column("departed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "newsletter_id"),
    )
    op.create_table(
        "subscription_slots",
        sa.Column("newsletter_id", sa.Integer(), nullable=False),
        sa.Column("cadence", _STR(length=16), nullable=False),
        sa.Column("timezone", _STR(length=64), nullable=False),
        sa.Column("send_hour", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("newsletter_id", "cadence", "timezone", "send_hour"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    # Filled before the triggers exist, in the migration's transaction: on PostgreSQL the
    # table is locked against writers meanwhile (the DDL took its lock), so nothing is counted
    # twice or missed.
    if postgres:
        op.execute("LOCK TABLE subscriptions, subscribers IN SHARE ROW EXCLUSIVE MODE")
    _backfill(postgres)
    if postgres:
        op.execute(_PG_FUNCTION)
    for statement in (_PG_TRIGGERS + _PG_SLOTS) if postgres else (_SQLITE_TRIGGERS + _SQLITE_SLOTS):
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON subscriptions" if postgres else ""))
    for name, table in _SLOT_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        for function in ("subscriptions_counted", "subscriptions_slotted", "subscribers_slotted"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("subscription_slots")
    op.drop_table("subscription_days")
    op.drop_table("subscription_counts")
