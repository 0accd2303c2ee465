"""The SQL that puts mail in the outbox (private to ``outbox.py``, which defines the public face).

An edition is queued with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: no row passes
through Python, and running it twice, or from two processes at once, adds nothing (the unique
keys (edition, subscriber) and (subscriber, period) say "already there"). One transactional
mail is two plain ``INSERT``s from statements built once, whether it is queued or skipped.
"""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest.clock import utcnow
from digest.db import dialect_insert
from digest.mail.content import MailContent
from digest.mail.message_id import digest_message_id_sql
from digest.models import Body, Delivery, Subscriber, Subscription
from digest.states import DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
B = Body.__table__  # type: ignore[attr-defined]

QUEUED = DeliveryStatus.QUEUED.value
SKIPPED = DeliveryStatus.SKIPPED.value
ANALYZE_AFTER = 10_000  # rows added after which PostgreSQL re-reads the table
_UNANALYZED = "deliveries_added_since_analyze"  # the session's count of them


def insert_mail(
    session: Session,
    *,
    kind: str,
    to_email: str,
    subscriber_id: int | None,
    mail: MailContent,
    message_id: str,
    skip: str | None = None,
) -> int:
    """One Body and one row for it, queued (or ``skipped`` for the reason ``skip``); its id.

    A skipped mail is written in full like a queued one, so a caller whose answer must not tell
    whether it queued mail costs the same either way; the row is never claimed.
    """
    now = utcnow()
    # Plain inserts join the session's transaction (and savepoint) but skip its unit of work:
    # whatever the session still holds goes out first, so the rows land in order.
    session.flush()
    body_id = _insert_body(session, mail, now)
    return _insert(
        session,
        D,
        {
            "kind": kind,
            "edition_id": None,
            "subscriber_id": subscriber_id,
            "body_id": body_id,
            "period_key": None,
            "to_email": to_email,
            "status": QUEUED if skip is None else SKIPPED,
            "attempts": 0,
            "next_attempt_at": now,
            "send_by": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_reply": skip,
            "message_id": message_id,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
        },
    )


def insert_once(
    session: Session,
    kind: str,
    once_key: str,
    subscriber_id: int,
    to_email: str,
    mail: MailContent,
    message_id: str,
) -> int | None:
    """One queued mail under the unique key (subscriber, ``once_key``), and its Body; its id, or
    None (nothing written) when that key is taken: ``INSERT ... ON CONFLICT DO NOTHING``.

    The row goes in first, without its body, so a repeat leaves no orphan body behind; the
    body is set in the same transaction, before any worker can see the row.
    """
    now = utcnow()
    session.flush()
    row = {
        "kind": kind,
        "subscriber_id": subscriber_id,
        "period_key": once_key,
        "to_email": to_email,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "message_id": message_id,
        "created_at": now,
        "updated_at": now,
    }
    insert = dialect_insert(session)(D).values(row).on_conflict_do_nothing()
    delivery_id = session.execute(insert.returning(D.c.id)).scalar()
    if delivery_id is None:
        return None
    body_id = _insert_body(session, mail, now)
    session.execute(sa.update(D).where(D.c.id == delivery_id).values(body_id=body_id))
    return int(delivery_id)


def _insert_body(session: Session, mail: MailContent, now: datetime) -> int:
    """A transactional mail's own Body (no edition, no posts); its id."""
    values = {"edition_id": None, "digest_key": "", "post_ids": [], "created_at": now}
    values.update(subject=mail.subject, text=mail.text, html=mail.html)
    if mail.tracked:  # a test copy of a tracked mail; confirmations and welcomes never are
        values.update(tracked_text=mail.tracked_text, tracked_html=mail.tracked_html)
    return _insert(session, B, values)


def _insert(session: Session, table: sa.Table, values: dict[str, object]) -> int:
    """Insert ``values`` into ``table``; the new row's id."""
    found = session.execute(_insert_returning_id(table, tuple(values)), values).scalar()
    if found is None:
        raise RuntimeError(f"the database gave no id for the new row of {table.name}")
    return int(found)


@functools.cache
def _insert_returning_id(table: sa.Table, columns: tuple[str, ...]) -> sa.Insert:
    """``INSERT INTO table (...) VALUES (:col, ...) RETURNING id``, built once per column set:
    the values go in as parameters, so each insert reuses the compiled statement."""
    values = {c: sa.bindparam(c, type_=table.c[c].type) for c in columns}
    return sa.insert(table).values(values).returning(table.c.id)


def _analyze_when_grown(session: Session, added: int) -> None:
    """PostgreSQL: fresh statistics on deliveries once the transaction has added
    ``ANALYZE_AFTER`` rows, in one insert or over many (an edition inserts per group).

    Not whenever autovacuum comes by: with stale ones the planner sorts every queued row on
    each claim instead of reading the index, and checks "already had this period's digest"
    by reading all of deliveries for each reader (three newsletters of 100,000 made one after
    the other took 7.5x one newsletter's time, 3.9x with this; bench/edition_make.py --three).
    """
    grown = session.info.get(_UNANALYZED, 0) + added
    if grown >= ANALYZE_AFTER:
        session.execute(sa.text("ANALYZE deliveries"))
        grown = 0
    session.info[_UNANALYZED] = grown


def _subscriber_ids(subscriber_filter: sa.ColumnElement[bool] | sa.Select) -> sa.Select:
    """The select of subscribers an enqueue covers: a select of ids, or a WHERE clause over
    subscribers joined with their subscriptions (which names one newsletter)."""
    if isinstance(subscriber_filter, sa.Select):
        return sa.select(S.c.id, S.c.email).where(S.c.id.in_(subscriber_filter))
    return (
        sa.select(S.c.id, S.c.email)
        .select_from(S.join(U, U.c.subscriber_id == S.c.id))
        .where(subscriber_filter)
    )


def insert_select(
    session: Session,
    *,
    status: str,
    kind: str,
    edition_id: int | None,
    body_id: int | None,
    period_key: str | sa.ColumnElement[str] | None,
    send_by: datetime | None,
    subscriber_filter: sa.ColumnElement[bool] | sa.Select,
    message_id_prefix: str,
    domain: str,
    reply: str | None,
    next_attempt_at: datetime | None = None,
) -> int:
    """Rows of ``kind`` in ``status`` for every subscriber the filter selects; returns how many
    were added (a row already there for the edition or the period is left as it is). They are
    due at ``next_attempt_at`` (now when not given: an alert may wait for quiet hours to end)."""
    now = utcnow()
    base = _subscriber_ids(subscriber_filter).subquery()
    period = (
        period_key
        if isinstance(period_key, sa.ColumnElement)
        else sa.bindparam("p_period_key", period_key, type_=sa.String)
    )
    sub = sa.select(
        sa.literal(kind).label("kind"),
        sa.bindparam("p_edition_id", edition_id, type_=sa.Integer).label("edition_id"),
        base.c.id.label("subscriber_id"),
        sa.bindparam("p_body_id", body_id, type_=sa.Integer).label("body_id"),
        period.label("period_key"),
        base.c.email.label("to_email"),
        sa.literal(status).label("status"),
        sa.literal(0).label("attempts"),
        sa.bindparam("now1", next_attempt_at or now, type_=D.c.next_attempt_at.type).label(
            "next_attempt_at"
        ),
        sa.bindparam("p_send_by", send_by, type_=D.c.send_by.type).label("send_by"),
        sa.bindparam("p_reply", reply, type_=sa.String).label("last_reply"),
        digest_message_id_sql(
            message_id_prefix, S.c.id, domain, session.get_bind().dialect.name
        ).label("message_id"),
        sa.bindparam("now2", now, type_=D.c.created_at.type).label("created_at"),
        sa.bindparam("now3", now, type_=D.c.updated_at.type).label("updated_at"),
    ).select_from(base.join(S, S.c.id == base.c.id))
    columns = [
        "kind",
        "edition_id",
        "subscriber_id",
        "body_id",
        "period_key",
        "to_email",
        "status",
        "attempts",
        "next_attempt_at",
        "send_by",
        "last_reply",
        "message_id",
        "created_at",
        "updated_at",
    ]
    insert = dialect_insert(session)
    # Either unique key (edition, subscriber) or (subscriber, period) means "already there":
    # making an edition twice, or from two processes at once, adds nothing.
    stmt = insert(D).from_select(columns, sub).on_conflict_do_nothing()
    if session.get_bind().dialect.name == "postgresql":
        # psycopg reports no rowcount for this INSERT ... SELECT through SQLAlchemy; count
        # the inserted rows inside the server instead of shipping their ids back.
        added = stmt.returning(D.c.id).cte("added")
        n = int(session.execute(sa.select(sa.func.count()).select_from(added)).scalar_one())
        _analyze_when_grown(session, n)
        return n
    return int(session.connection().execute(stmt).rowcount or 0)
