"""The SQL that puts mail in the outbox (private to ``outbox.py``, which defines the public face).

An edition is queued with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: no row passes
through Python, and running it twice, or from two processes at once, adds nothing (the unique
keys (edition, subscriber) and (subscriber, period) say "already there"). One transactional
mail is two plain ``INSERT``s from statements built once.
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
from digest.models import Body, Delivery, Subscriber
from digest.states import DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
B = Body.__table__  # type: ignore[attr-defined]

QUEUED = DeliveryStatus.QUEUED.value
ANALYZE_AFTER = 10_000  # rows added at once after which PostgreSQL re-reads the table


def insert_mail(
    session: Session,
    *,
    kind: str,
    to_email: str,
    subscriber_id: int | None,
    mail: MailContent,
    message_id: str,
    send: bool = True,
) -> int | None:
    """One Body and one queued row for it; returns the row's id.

    With ``send`` false the same two statements run and add nothing (None): a caller whose
    answer must not tell whether it queued mail costs the same either way.
    """
    now = utcnow()
    # Plain inserts join the session's transaction (and savepoint) but skip its unit of work:
    # whatever the session still holds goes out first, so the rows land in order.
    session.flush()
    body_id = _insert_when(
        session,
        B,
        send,
        {
            "edition_id": None,
            "digest_key": "",
            "subject": mail.subject,
            "text": mail.text,
            "html": mail.html,
            "post_ids": [],
            "created_at": now,
        },
    )
    delivery_id = _insert_when(
        session,
        D,
        send,
        {
            "kind": kind,
            "edition_id": None,
            "subscriber_id": subscriber_id,
            "body_id": body_id,
            "period_key": None,
            "to_email": to_email,
            "status": QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "send_by": None,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_reply": None,
            "message_id": message_id,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
        },
    )
    if send and delivery_id is None:
        raise RuntimeError("the database gave no id for the new delivery")
    return delivery_id


def _insert_when(
    session: Session, table: sa.Table, send: bool, values: dict[str, object]
) -> int | None:
    """Insert ``values`` into ``table`` when ``send``; the new row's id, else None."""
    statement = _conditional_insert(table, tuple(values))
    found = session.execute(statement, {**values, "send": send}).scalar()
    return None if found is None else int(found)


@functools.cache
def _conditional_insert(table: sa.Table, columns: tuple[str, ...]) -> sa.Insert:
    """``INSERT INTO table (...) SELECT :col, ... WHERE :send RETURNING id``: one row or none.

    Built once per table and column set: the values go in as parameters, so each insert
    reuses the compiled statement.
    """
    values = sa.select(*(sa.bindparam(c, type_=table.c[c].type) for c in columns))
    chosen = values.where(sa.bindparam("send", type_=sa.Boolean) == sa.true())
    return sa.insert(table).from_select(list(columns), chosen).returning(table.c.id)


def _subscriber_ids(subscriber_filter: sa.ColumnElement[bool] | sa.Select) -> sa.Select:
    """The select of subscribers an enqueue covers: a WHERE clause or a select of ids."""
    if isinstance(subscriber_filter, sa.Select):
        return sa.select(S.c.id, S.c.email).where(S.c.id.in_(subscriber_filter))
    return sa.select(S.c.id, S.c.email).where(subscriber_filter)


def insert_select(
    session: Session,
    *,
    status: str,
    kind: str,
    edition_id: int,
    body_id: int | None,
    period_key: str | sa.ColumnElement[str] | None,
    send_by: datetime | None,
    subscriber_filter: sa.ColumnElement[bool] | sa.Select,
    message_id_prefix: str,
    domain: str,
    reply: str | None,
) -> int:
    """Rows of ``kind`` in ``status`` for every subscriber the filter selects; returns how many
    were added (a row already there for the edition or the period is left as it is)."""
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
        sa.bindparam("now1", now, type_=D.c.next_attempt_at.type).label("next_attempt_at"),
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
        if n >= ANALYZE_AFTER:
            # Fresh statistics now, not whenever autovacuum comes by: with stale ones the
            # planner sorts every queued row on each claim instead of reading the index.
            session.execute(sa.text("ANALYZE deliveries"))
        return n
    return int(session.connection().execute(stmt).rowcount or 0)
