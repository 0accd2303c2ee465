"""Putting events in the webhook queue, in the transaction of the change they report: one
``webhook_deliveries`` row per webhook that takes the event, all sharing one event id and one
body. A change that rolls back takes its event with it; one that commits cannot lose it.

Every state change asks who listens: one read of the ``webhooks`` table (a handful of rows, a
page of the store), so a webhook added anywhere gets the next event, and with none added the
cost is that read. The rows are written with ``INSERT ... SELECT FROM webhooks``, so a webhook
removed meanwhile is simply not written to.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest import webhook_rules as rules
from digest.clock import utcnow
from digest.db import in_batches
from digest.models import Newsletter, Subscriber
from digest.models_engagement import Webhook, WebhookDelivery
from digest.states import SubscriberStatus

W = Webhook.__table__  # type: ignore[attr-defined]
WD = WebhookDelivery.__table__  # type: ignore[attr-defined]
_WHO_LISTENS = sa.select(W.c.id, W.c.events)


def listeners(session: Session, type_: str) -> tuple[int, ...]:
    """The ids of the webhooks that take ``type_``."""
    return tuple(
        webhook_id
        for webhook_id, events in session.execute(_WHO_LISTENS)
        if type_ in (events or ())
    )


def emit(session: Session, type_: str, data: dict[str, Any]) -> str | None:
    """Queue the event for every webhook that takes it, in the session's transaction; its id,
    or None when no webhook takes it (nothing written)."""
    return emit_many(session, type_, [data])[0]


def emit_many(session: Session, type_: str, datas: Sequence[dict[str, Any]]) -> list[str | None]:
    """Queue many events of one type at once (an import): a few multi-row inserts, not one
    statement each. Their ids, or Nones when no webhook takes the type."""
    return write(session, listeners(session, type_), type_, datas)


def write(
    session: Session,
    ids: Sequence[int],
    type_: str,
    datas: Sequence[dict[str, Any]],
    *,
    keep: Sequence[bool] | None = None,
) -> list[str | None]:
    """``emit_many`` for the webhooks ``ids`` already read (``listeners``).

    ``keep`` (one flag per event) runs the same statements for every event but writes only
    the kept ones: a subscribe request must cost the same whatever the address's state.
    """
    if not ids or not datas:
        return [None] * len(datas)
    now = utcnow()
    rows = []
    for i, data in enumerate(datas):
        event_id = uuid.uuid4().hex
        body = rules.body(event_id, type_, now, data)
        kept = True if keep is None else bool(keep[i])
        rows.append({"b_event": event_id, "b_body": body, "b_keep": kept})
    # Written from the webhooks table itself: a webhook removed since we read the list gets
    # no rows (no foreign key error in the middle of someone's unsubscribe).
    select = sa.select(
        W.c.id,
        sa.bindparam("b_event", type_=sa.String),
        sa.literal(type_, sa.String),
        sa.bindparam("b_body", type_=sa.Text),
        sa.literal(now, WD.c.created_at.type),
        sa.literal(rules.QUEUED, sa.String),
        sa.literal(0, sa.Integer),
        sa.literal(now, WD.c.next_attempt_at.type),
    ).where(
        # One comparison per webhook, not IN: an expanding IN cannot go in an executemany.
        sa.or_(*(W.c.id == webhook_id for webhook_id in ids)),
        sa.bindparam("b_keep", type_=sa.Boolean),
    )
    insert = sa.insert(WD).from_select(
        [
            "webhook_id",
            "event_id",
            "type",
            "body",
            "created_at",
            "status",
            "attempts",
            "next_attempt_at",
        ],
        select,
    )
    connection = session.connection()
    for chunk in in_batches(rows, 1000):
        connection.execute(insert, list(chunk))
    return [str(r["b_event"]) if r["b_keep"] else None for r in rows]


def subscriber_data(email: str, newsletter: str, status: str, at: datetime) -> dict[str, Any]:
    """The data of a ``subscriber.*`` event: who, on which newsletter, now in which status."""
    return {"email": email, "newsletter": newsletter, "status": status, "at": rules.timestamp(at)}


def subscription_changed(
    session: Session,
    *,
    subscriber_id: int,
    newsletter_id: int,
    status: str,
    at: datetime,
    email: str | None = None,
) -> str | None:
    """Report a subscription's move to ``status`` (when some webhook takes its event)."""
    type_ = rules.event_for_status(status)
    ids = listeners(session, type_) if type_ is not None else ()
    if type_ is None or not ids:
        return None
    if email is None:
        person = session.get(Subscriber, subscriber_id)
        if person is None:
            return None
        email = person.email
    data = subscriber_data(email, slug_of(session, newsletter_id), status, at)
    return write(session, ids, type_, [data])[0]


def subscriptions_changed(
    session: Session, newsletter_id: int, moves: Iterable[tuple[str, str]], at: datetime
) -> int:
    """Report many subscriptions of one newsletter moved, as (email, status) pairs (an
    import): nothing is built unless some webhook takes the event. How many were queued."""
    by_type: dict[str, list[tuple[str, str]]] = {}
    for email, status in moves:
        type_ = rules.event_for_status(status)
        if type_ is not None:
            by_type.setdefault(type_, []).append((email, status))
    queued = 0
    for type_, pairs in by_type.items():
        ids = listeners(session, type_)
        if ids:
            slug = slug_of(session, newsletter_id)
            datas = [subscriber_data(email, slug, status, at) for email, status in pairs]
            queued += len(write(session, ids, type_, datas))
    return queued


def requested(session: Session, email: str, moved: dict[int, bool], at: datetime) -> None:
    """Report a subscribe request's new pending subscriptions (``moved``: per newsletter asked
    for, whether it became pending). The same statements run for every address, moved or not:
    how long a request takes must not tell who is subscribed."""
    ids = listeners(session, rules.PENDING)
    if not ids:
        return
    datas = [
        subscriber_data(email, slug_of(session, nid), SubscriberStatus.PENDING.value, at)
        for nid in moved
    ]
    write(session, ids, rules.PENDING, datas, keep=list(moved.values()))


def erased(
    session: Session,
    emails: Iterable[str],
    hashed: str,
    newsletter_ids: Iterable[int],
    at: datetime,
) -> None:
    """Report an erasure by the address's hash alone (the person asked to be forgotten), and
    take their address (each of ``emails``) out of the queue: the events still waiting about
    them go unsent, and the delivered ones kept for a while go too."""
    for email in set(emails):
        _scrub(session, email)
    ids = listeners(session, rules.ERASED)
    if not ids:
        return
    data = {
        "email_hash": hashed,
        "newsletters": [slug_of(session, nid) for nid in sorted(set(newsletter_ids))],
        "at": rules.timestamp(at),
    }
    write(session, ids, rules.ERASED, [data])


def slug_of(session: Session, newsletter_id: int) -> str:
    """A newsletter's slug (the session's copy, read once)."""
    newsletter = session.get(Newsletter, newsletter_id)
    return newsletter.slug if newsletter is not None else str(newsletter_id)


def _scrub(session: Session, email: str) -> None:
    # The bodies are written by ``rules.body`` alone, so the address appears in exactly this
    # form; LIKE's wildcards in it are escaped.
    needle = rules.body("", "", utcnow(), {"email": email}).split('"data":{', 1)[1][:-2]
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    session.execute(sa.delete(WD).where(WD.c.body.like(pattern, escape="\\")))
