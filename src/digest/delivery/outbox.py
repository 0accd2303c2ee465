"""The outbox: putting mail in it, claiming it under a lease, and recording what happened to it.

One row of ``deliveries`` is one message to one address. Rows move queued -> sending (leased
by one worker) -> sent / deferred / bounced / failed, or to cancelled / skipped without being
sent. Every function takes an open session (``Database.transaction()``), uses Core statements
on the tables (no ORM objects on the hot path) and works the same on SQLite and PostgreSQL.
This module is the one way in; the SQL it builds lives in ``_enqueue_sql`` and ``_lease_sql``.

Exactly-once as far as SMTP allows: a row becomes ``sent`` only after the server accepted the
message and only while the lease is still ours; a crash between the two leaves the row leased,
and once the lease is taken back the message goes again with the same Message-ID (the
"in-flight rule": only messages then in flight can repeat).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from digest.alert_history import unfold
from digest.clock import utcnow
from digest.db import in_batches
from digest.delivery import _enqueue_sql, _lease_sql
from digest.delivery.outcomes import (
    LATE_REPLY,
    NEWSLETTER_MAIL,
    Claimed,
    Outcome,
    mail_of,
    newsletter_of,
)
from digest.mail.content import MailContent
from digest.mail.message_id import new_message_id
from digest.models import MAX_REPLY, Body, Delivery, Subscriber, Subscription
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
ACTIVE = SubscriberStatus.ACTIVE.value
B = Body.__table__  # type: ignore[attr-defined]

QUEUED = DeliveryStatus.QUEUED.value
SENDING = DeliveryStatus.SENDING.value
DEFERRED = DeliveryStatus.DEFERRED.value
SENT = DeliveryStatus.SENT.value


# -- putting mail in -----------------------------------------------------------------------------


def enqueue_transactional(
    session: Session,
    *,
    kind: str,
    to_email: str,
    subscriber_id: int | None,
    mail: MailContent,
    domain: str,
    skip: str | None = None,
) -> int:
    """Queue one complete transactional mail (confirmation, test): one Body, one row; its id.

    Two plain ``INSERT``s and no ORM object: every subscribe request writes one. With ``skip``
    (why no mail is due) the same two rows are written, the delivery ``skipped`` with that
    reason, and never sent: the subscribe form answers alike for every address, and writing
    the same rows whether or not the mail goes keeps its timing from telling who is subscribed.
    """
    DeliveryKind(kind)  # a typo in a kind is a bug: fail loudly, before writing anything
    return _enqueue_sql.insert_mail(
        session,
        kind=kind,
        to_email=to_email,
        subscriber_id=subscriber_id,
        mail=mail,
        message_id=new_message_id(domain),
        skip=skip,
    )


def enqueue_once(
    session: Session,
    *,
    kind: DeliveryKind,
    once_key: str,
    subscriber_id: int,
    to_email: str,
    mail: MailContent,
    domain: str,
) -> int | None:
    """Queue one mail at most once per reader and ``once_key`` ("2/welcome"), however often or
    concurrently this runs; its id, or None when it was queued before."""
    message_id = new_message_id(domain)
    args = (kind.value, once_key, subscriber_id, to_email, mail, message_id)
    return _enqueue_sql.insert_once(session, *args)


def enqueue_digests(
    session: Session,
    *,
    edition_id: int,
    body_id: int,
    period_key: str | sa.ColumnElement[str],
    send_by: datetime | None,
    subscriber_filter: sa.ColumnElement[bool] | sa.Select,
    message_id_prefix: str,
    domain: str,
) -> int:
    """Queue the edition's body for every subscriber the filter selects; returns rows added.

    One ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``: idempotent, safe to run from two
    processes at once. ``subscriber_filter`` is a WHERE clause over ``Subscriber`` or a select
    of subscriber ids; ``period_key`` a string or a SQL expression over ``subscribers``.
    """
    return _enqueue_sql.insert_select(
        session,
        status=QUEUED,
        kind=DeliveryKind.DIGEST.value,
        edition_id=edition_id,
        body_id=body_id,
        period_key=period_key,
        send_by=send_by,
        subscriber_filter=subscriber_filter,
        message_id_prefix=message_id_prefix,
        domain=domain,
        reply=None,
    )


#: Rows of any kind and state (alerts: queued or held) for a set of readers, set-wise.
enqueue_select = _enqueue_sql.insert_select


def record_skips(
    session: Session,
    *,
    edition_id: int,
    period_key: str | sa.ColumnElement[str],
    subscriber_filter: sa.ColumnElement[bool] | sa.Select,
    message_id_prefix: str,
    domain: str,
    reason: str = "nothing new this period",
) -> int:
    """Record ``skipped`` rows for subscribers who get nothing this period (takes the key)."""
    return _enqueue_sql.insert_select(
        session,
        status=DeliveryStatus.SKIPPED.value,
        kind=DeliveryKind.DIGEST.value,
        edition_id=edition_id,
        body_id=None,
        period_key=period_key,
        send_by=None,
        subscriber_filter=subscriber_filter,
        message_id_prefix=message_id_prefix,
        domain=domain,
        reply=reason,
    )


# -- claiming ------------------------------------------------------------------------------------


def claim(
    session: Session, *, owner: str, limit: int, lease: timedelta, now: datetime | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``owner`` and return those to send.

    Due means queued or deferred with ``next_attempt_at <= now``, or ``sending`` under an
    expired lease (a dead worker's). Of the rows taken, digests whose subscriber is no longer
    active are cancelled and digests past their send-by time skipped; they are not returned.
    """
    now = now or utcnow()
    rows: list[sa.Row[Any]] = []
    # Three index range scans instead of one OR: with an OR the database gathers and sorts
    # every due row to pick the first few, which at a million queued rows is a million-row
    # sort per batch. Taken back first: dead workers' leases, then retries, then new mail.
    for due in (
        sa.and_(D.c.status == SENDING, D.c.lease_expires_at < now),
        sa.and_(D.c.status == DEFERRED, D.c.next_attempt_at <= now),
        sa.and_(D.c.status == QUEUED, D.c.next_attempt_at <= now),
    ):
        if len(rows) >= limit:
            break
        rows.extend(_lease_sql.lease(session, due, limit - len(rows), owner, now + lease, now))
    if not rows:
        return []
    sub_ids = {r.subscriber_id for r in rows if r.subscriber_id is not None}
    # (person, newsletter) -> status; (person, None) -> active on any newsletter
    found = _lease_sql.people(session, sub_ids)
    names, statuses = found.names, found.statuses
    muted = _lease_sql.alerts_off(session, rows)  # alerts whose reader turned them off since
    withdrawn = _lease_sql.announcements_cancelled(session, rows)
    cancelled: list[int] = []
    late: list[int] = []
    late_digests: set[int] = set()
    out: list[Claimed] = []
    for r in rows:
        newsletter_id = newsletter_of(r.period_key)
        sid = r.subscriber_id or 0
        status = statuses.get((sid, newsletter_id))
        name = names.get(sid, "") if statuses.get((sid, None)) == ACTIVE else ""
        if r.id in muted or r.id in withdrawn:
            continue
        if r.kind in NEWSLETTER_MAIL:
            if status != ACTIVE:
                cancelled.append(r.id)
                continue
            if r.send_by is not None and r.send_by <= now:
                late.append(r.id)
                if r.kind == DeliveryKind.DIGEST.value and r.body_id and r.subscriber_id:
                    late_digests.add(r.id)
                continue
        out.append(
            Claimed(
                r.id,
                r.kind,
                r.subscriber_id,
                r.to_email,
                # Until they confirm, the name is whatever a stranger typed into the form: the
                # site must not print it in a mail to the address's owner.
                name,
                r.body_id,
                r.message_id,
                r.attempts,
                r.created_at,
                newsletter_id,
                r.send_by,
                mail_of(r.kind, r.edition_id, r.period_key),
                sid in found.opted_out,
            )
        )
    cancel, skip = DeliveryStatus.CANCELLED.value, DeliveryStatus.SKIPPED.value
    _lease_sql.close(session, cancelled, cancel, "subscriber no longer active", now)
    _lease_sql.close(session, late, skip, LATE_REPLY, now)
    # A digest not sent after all gives back the held alerts' stories it was to carry.
    unfold(session, [(r.subscriber_id, r.body_id) for r in rows if r.id in late_digests])
    _lease_sql.close(session, sorted(muted), cancel, "alerts turned off", now)
    _lease_sql.close(session, sorted(withdrawn), cancel, "announcement cancelled", now)
    out.sort(key=lambda c: c.id)
    return out


def bodies(session: Session, ids: Iterable[int]) -> dict[int, MailContent]:
    """The bodies with these ids (a worker caches them; there are few per edition)."""
    wanted = sorted(set(ids))
    found: dict[int, MailContent] = {}
    for chunk in in_batches(wanted):
        for bid, subject, text, html, tracked_text, tracked_html in session.execute(
            sa.select(
                B.c.id, B.c.subject, B.c.text, B.c.html, B.c.tracked_text, B.c.tracked_html
            ).where(B.c.id.in_(chunk))
        ):
            found[bid] = MailContent(subject, text, html, tracked_text, tracked_html)
    return found


# -- recording -----------------------------------------------------------------------------------


def record(
    session: Session, *, owner: str, outcomes: Sequence[Outcome], now: datetime | None = None
) -> int:
    """Write the outcomes of a batch, each only if the row is still leased to ``owner``.

    One executemany per kind of outcome; returns how many rows were updated. What a refusal
    means for the subscriber is the caller's to apply in the same transaction
    (``bounces.apply_refusals``).
    """
    now = now or utcnow()
    updated = 0
    sent = [o for o in outcomes if o.status == SENT]
    if sent:
        params = [{"b_id": o.delivery_id, "b_reply": o.reply[:MAX_REPLY]} for o in sent]
        updated += _lease_sql.finish(
            session, owner, params, status=SENT, sent_at=now, updated_at=now
        )
    deferred = [o for o in outcomes if o.status == DEFERRED]
    if deferred:
        params = [
            {
                "b_id": o.delivery_id,
                "b_reply": o.reply[:MAX_REPLY],
                "b_next": o.next_attempt_at or now,
            }
            for o in deferred
        ]
        updated += _lease_sql.finish(
            session,
            owner,
            params,
            status=DEFERRED,
            next_attempt_at=sa.bindparam("b_next", type_=D.c.next_attempt_at.type),
            updated_at=now,
        )
    final = [o for o in outcomes if o.status not in (SENT, DEFERRED)]
    if final:
        params = [
            {"b_id": o.delivery_id, "b_status": o.status, "b_reply": o.reply[:MAX_REPLY]}
            for o in final
        ]
        updated += _lease_sql.finish(
            session, owner, params, status=sa.bindparam("b_status"), updated_at=now
        )
    return updated


# -- leases --------------------------------------------------------------------------------------


def give_back(session: Session, *, owner: str, ids: Sequence[int]) -> int:
    """Return leased rows that were not tried (shutdown, open breaker) to the queue."""
    n = 0
    for chunk in in_batches(list(ids)):
        mine = sa.and_(D.c.id.in_(chunk), D.c.lease_owner == owner)
        n += _lease_sql.release(session, mine, utcnow())
    return n


def extend_leases(session: Session, *, owner: str, until: datetime) -> int:
    """Push back the expiry of every lease ``owner`` holds (a long batch on a slow server)."""
    result = session.execute(
        sa.update(D)
        .where(D.c.status == SENDING, D.c.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def requeue_expired_leases(session: Session, now: datetime | None = None) -> int:
    """Take back every lease that has run out (its worker died); returns how many rows."""
    now = now or utcnow()
    return _lease_sql.release(session, D.c.lease_expires_at < now, now)


def requeue_owners(session: Session, owners: Sequence[str]) -> int:
    """Take back the leases of these owners at once (workers known to be dead)."""
    if not owners:
        return 0
    return _lease_sql.release(session, D.c.lease_owner.in_(list(owners)), utcnow())


def lease_owners(session: Session, prefix: str) -> list[str]:
    """Owners of current leases whose name starts with ``prefix`` (e.g. this host's)."""
    rows = session.execute(
        sa.select(D.c.lease_owner)
        .where(D.c.status == SENDING, D.c.lease_owner.startswith(prefix, autoescape=True))
        .distinct()
    )
    return [r[0] for r in rows if r[0]]


# -- a subscriber's mail -------------------------------------------------------------------------


def cancel_for(session: Session, subscriber_id: int, *, newsletter_id: int | None = None) -> int:
    """Cancel the subscriber's mail that has not gone out (queued or deferred): all of it, or
    one newsletter's (its digests and other once-keyed mail); how many rows."""
    # Through the ORM, like the subscriber's own change it goes with: the session flushes that
    # first and keeps any Delivery it holds in step.
    which = (
        () if newsletter_id is None else (col(Delivery.period_key).startswith(f"{newsletter_id}/"),)
    )
    result = session.execute(
        sa.update(Delivery)
        .where(
            col(Delivery.subscriber_id) == subscriber_id,
            col(Delivery.status).in_([QUEUED, DEFERRED]),
            *which,
        )
        .values(status=DeliveryStatus.CANCELLED.value, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def queued_since(session: Session, *, subscriber_id: int, kind: str, since: datetime) -> int:
    """How many mails of ``kind`` were queued for the subscriber since ``since`` (in any state
    since, but never those recorded as skipped: they were not to be sent)."""
    return int(
        session.execute(
            sa.select(sa.func.count()).where(
                D.c.subscriber_id == subscriber_id,
                D.c.kind == kind,
                D.c.created_at >= since,
                D.c.status != DeliveryStatus.SKIPPED.value,
            )
        ).scalar_one()
    )
