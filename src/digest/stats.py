"""How digest stands, counted in the store: the one place ``digest status``, ``GET /metrics``
and ``GET /api/stats`` read their figures from.

Plain data only, and aggregates only: counts by state, the latest editions, the last errors,
the classes of the mail servers' replies and the send latency of sent rows.

``figures`` (what ``/metrics`` shows) leaves out every count a stranger's ``POST /subscribe``
can move: a request for a new, pending, unsubscribed or bounced address makes a pending
subscriber and queues a confirmation mail, one for an active address does neither, so
pending counts or confirmation mails by state (sent, bounced, replies, latency) would tell
whether an address subscribes. Active readers only change through their own links, bounces
and the operator; digests go only to them. Operators see everything in ``digest status`` and
``/api/stats``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest.alert_history import expired_folded
from digest.click_totals import ClickTotal, click_totals
from digest.models import Delivery, Edition, Feed
from digest.models_campaigns import Alert
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus
from digest.subscribers import count_by_status

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
F = Feed.__table__  # type: ignore[attr-defined]
AL = Alert.__table__  # type: ignore[attr-defined]
PROBLEMS = (
    DeliveryStatus.FAILED.value,
    DeliveryStatus.BOUNCED.value,
    DeliveryStatus.DEFERRED.value,
)
# Rows a delivery run has still to send.
_WAITING = (DeliveryStatus.QUEUED.value, DeliveryStatus.SENDING.value)
# Outbox rows no stranger can cause: all but the confirmation mails a subscribe request queues.
_UNPROMPTED = D.c.kind != DeliveryKind.CONFIRM.value
#: Upper bounds (seconds from enqueueing to acceptance) of the send latency histogram: a digest
#: normally goes within minutes of its hour.
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


@dataclass(frozen=True)
class EditionStats:
    """One edition and its deliveries by state."""

    id: int
    key: str
    created_at: datetime
    recipients: int
    counts: dict[str, int]


@dataclass(frozen=True)
class ErrorRow:
    """One delivery that did not go (yet), with the server's last reply."""

    delivery_id: int
    to_email: str
    status: str
    last_reply: str
    updated_at: datetime


@dataclass(frozen=True)
class OutboxStatus:
    """The outbox by state, the latest editions, the last errors and subscribers by status."""

    counts: dict[str, int]
    editions: list[EditionStats] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)
    subscribers: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)  # see ``alert_counts``

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class Counts:
    """How the list, the outbox, the editions and the feeds stand."""

    subscribers: dict[str, int]
    deliveries: dict[str, int]
    editions: int
    feeds: int
    feeds_failing: int
    alerts: dict[str, int] = field(default_factory=dict)  # see ``alert_counts``


@dataclass(frozen=True)
class Latency:
    """Send latency of every sent row: cumulative counts per upper bound, and the total."""

    buckets: list[tuple[float, int]]  # (upper bound in seconds, rows at or under it)
    count: int
    seconds: float


@dataclass(frozen=True)
class Figures:
    """Everything ``GET /metrics`` shows, read in one transaction: nothing a stranger's
    subscribe request moves (see the module docstring)."""

    counts: Counts
    replies: dict[str, int]
    latency: Latency
    clicks: list[ClickTotal] = field(default_factory=list)  # per newsletter


def _zeroes() -> dict[str, int]:
    return {s.value: 0 for s in DeliveryStatus}


def outbox_counts(
    session: Session, *, where: sa.ColumnElement[bool] | None = None
) -> dict[str, int]:
    """How many deliveries (``where`` holds, when given) are in each state (every state present)."""
    counts = _zeroes()
    query = sa.select(D.c.status, sa.func.count()).group_by(D.c.status)
    for status, n in session.execute(query if where is None else query.where(where)):
        counts[status] = int(n)
    return counts


def waiting(session: Session) -> int:
    """How many deliveries are queued or being sent: what a delivery run has still to do."""
    query = sa.select(sa.func.count()).where(D.c.status.in_(_WAITING))
    return int(session.execute(query).scalar_one())


def latest_editions(
    session: Session, limit: int = 5, newsletter_id: int | None = None
) -> list[EditionStats]:
    """The newest editions (of one newsletter, or all), each with its deliveries counted by
    state."""
    which = () if newsletter_id is None else (E.c.newsletter_id == newsletter_id,)
    editions = session.execute(
        sa.select(E.c.id, E.c.key, E.c.created_at, E.c.recipients)
        .where(*which)
        .order_by(E.c.created_at.desc(), E.c.id.desc())
        .limit(limit)
    ).all()
    if not editions:
        return []
    counts = edition_counts(session, [e.id for e in editions])
    return [
        EditionStats(
            e.id, e.key, e.created_at, e.recipients or sum(counts[e.id].values()), counts[e.id]
        )
        for e in editions
    ]


def status_to_group(session: Session) -> sa.ColumnElement[str]:
    """A delivery's state to group one mail's rows by.

    On SQLite an expression of it, not the column: grouped by the column, SQLite walks the
    whole outbox in the claim index's ``(status, ...)`` order to save a sort (when the mail
    is a large share of the outbox) instead of reading the mail's rows through their index.
    PostgreSQL reads them through their index either way, and the expression costs it time.
    """
    if session.get_bind().dialect.name == "sqlite":
        return D.c.status.concat("")
    return D.c.status


def edition_counts(session: Session, edition_ids: list[int]) -> dict[int, dict[str, int]]:
    """The deliveries of each edition by state (every state present), in one query."""
    counts: dict[int, dict[str, int]] = {i: _zeroes() for i in edition_ids}
    if not counts:
        return counts
    status = status_to_group(session)
    rows = session.execute(
        sa.select(D.c.edition_id, status, sa.func.count())
        .where(D.c.edition_id.in_(list(counts)))
        .group_by(D.c.edition_id, status)
    )
    for edition_id, status, n in rows:
        counts[edition_id][status] = int(n)
    return counts


def last_errors(
    session: Session, limit: int = 10, *, where: sa.ColumnElement[bool] | None = None
) -> list[ErrorRow]:
    """The latest failed, bounced or deferred deliveries (``where`` holds) with their reply."""
    rows = session.execute(
        sa.select(D.c.id, D.c.to_email, D.c.status, D.c.last_reply, D.c.updated_at)
        .where(D.c.status.in_(PROBLEMS), *(() if where is None else (where,)))
        .order_by(D.c.updated_at.desc(), D.c.id.desc())
        .limit(limit)
    )
    return [ErrorRow(r.id, r.to_email, r.status, r.last_reply or "", r.updated_at) for r in rows]


def outbox_status(
    session: Session, *, editions: int = 5, errors: int = 10, newsletter_id: int | None = None
) -> OutboxStatus:
    """Counts, the latest editions, the last errors and subscribers by status in one read;
    editions and subscribers of one newsletter when given."""
    # A newsletter's mail is what its once-keys name: its digests and welcomes.
    mine = None if newsletter_id is None else D.c.period_key.startswith(f"{newsletter_id}/")
    return OutboxStatus(
        outbox_counts(session, where=mine),
        latest_editions(session, editions, newsletter_id),
        last_errors(session, errors, where=mine),
        count_by_status(session, newsletter_id),
        alert_counts(session, newsletter_id),
    )


def counts(session: Session) -> Counts:
    """Subscribers by status, deliveries by state, editions made, feeds and failing feeds."""
    editions = session.execute(sa.select(sa.func.count()).select_from(E)).scalar_one()
    feeds, failing = session.execute(
        sa.select(sa.func.count(), sa.func.count(F.c.failing_since))
    ).one()
    return Counts(
        subscribers=count_by_status(session),
        deliveries=outbox_counts(session),
        editions=int(editions),
        feeds=int(feeds),
        feeds_failing=int(failing),
        alerts=alert_counts(session),
    )


def alert_counts(session: Session, newsletter_id: int | None = None) -> dict[str, int]:
    """The breaking-news lane (of one newsletter, or all): alerts sent, held back by readers'
    budgets and quiet hours, expired unsent, and folded into digests, each counted per reader."""
    alert = D.c.kind == DeliveryKind.ALERT.value
    mine = () if newsletter_id is None else (D.c.period_key.startswith(f"{newsletter_id}/"),)
    by_state = outbox_counts(session, where=sa.and_(alert, *mine))
    raised = () if newsletter_id is None else (AL.c.newsletter_id == newsletter_id,)
    budget, quiet = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(AL.c.held_budget), 0),
            sa.func.coalesce(sa.func.sum(AL.c.held_quiet), 0),
        ).where(*raised)
    ).one()
    expired_then_folded = session.execute(
        sa.select(sa.func.count()).where(alert, *mine, expired_folded())
    ).scalar_one()
    return {
        "sent": by_state[DeliveryStatus.SENT.value],
        "held_budget": int(budget),
        "held_quiet": int(quiet),
        # Counted whether or not a digest has taken its story since: the count never falls.
        "expired": by_state[DeliveryStatus.SKIPPED.value] + int(expired_then_folded),
        "folded": by_state[DeliveryStatus.FOLDED.value],
    }


def reply_classes(session: Session) -> dict[str, int]:
    """Deliveries but confirmation mails by the class of the server's last reply (rows without
    an SMTP code left out: skips and cancellations, whose last_reply is a note of ours)."""
    first = sa.func.substr(D.c.last_reply, 1, 1)
    has_code = sa.or_(*(D.c.last_reply.like(f"{digit}__ %") for digit in "245"))
    found = {"2xx": 0, "4xx": 0, "5xx": 0}
    for digit, n in session.execute(
        sa.select(first, sa.func.count()).where(has_code, _UNPROMPTED).group_by(first)
    ):
        found[f"{digit}xx"] = int(n)
    return found


def _latency_seconds(session: Session) -> sa.ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.extract("epoch", D.c.sent_at - D.c.created_at)
    return (sa.func.julianday(D.c.sent_at) - sa.func.julianday(D.c.created_at)) * 86400.0


def latency(session: Session) -> Latency:
    """Seconds from enqueueing to the server's acceptance (``sent_at - created_at``) of every
    sent row but confirmation mails, in one pass: the worker keeps no in-process histogram,
    and every process's sends are in the store."""
    seconds = _latency_seconds(session)
    columns = [sa.func.count(), sa.func.coalesce(sa.func.sum(seconds), 0.0)]
    columns += [sa.func.count(sa.case((seconds <= b, 1))) for b in LATENCY_BUCKETS]
    total, total_seconds, *under = session.execute(
        sa.select(*columns).where(D.c.sent_at.is_not(None), _UNPROMPTED)
    ).one()
    buckets = [(b, int(n)) for b, n in zip(LATENCY_BUCKETS, under, strict=True)]
    return Latency(buckets, int(total), float(total_seconds))


def figures(session: Session) -> Figures:
    """The counts (active subscribers only; no confirmation mails), the reply classes, the
    send latency and the clicks per newsletter, for ``GET /metrics``."""
    whole = counts(session)
    active = SubscriberStatus.ACTIVE.value
    shown = replace(
        whole,
        subscribers={active: whole.subscribers[active]},
        deliveries=outbox_counts(session, where=_UNPROMPTED),
    )
    return Figures(shown, reply_classes(session), latency(session), click_totals(session))
