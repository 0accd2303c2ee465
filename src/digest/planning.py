"""Planning an edition: who is due, which posts are candidates, and the groups of subscribers
who get the very same digest, each with its selection. Reads only; ``editions.py`` writes.

Subscribers are never loaded one by one. They are grouped in SQL by what decides their digest
(timezone and send hour, topics, where their last digest ended, and which of the currently
featured posts they already had), and selection (``compose/select.py``) runs once per group.
A group leaves this module as plain data; ``members`` turns it back into the SQL test of who
is in it, for the writer's ``INSERT ... SELECT`` and for a dry run's list of addresses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.alert_history import Alerts, recent_alerts
from digest.compose.select import (
    Candidate,
    CandidatePool,
    Limits,
    Profile,
    Selection,
    normalize_topics,
)
from digest.compose.select import select as select_posts
from digest.config import Settings
from digest.models import Body, Delivery, Edition, Post, Subscriber, Subscription
from digest.newsletter_config import NewsletterConfig
from digest.periods import Period, is_due, period_for
from digest.posts.featuring import is_featured
from digest.states import Cadence, DeliveryStatus, SubscriberStatus

S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
#: How far back candidates are loaded: a subscriber whose last digest is older than this gets
#: the last month, not every post since they joined.
LOOKBACK = timedelta(days=31)
#: Featured posts considered per edition (the newest); Don't Miss shows at most a few anyway.
MAX_FEATURED_CANDIDATES = 30
# Deliveries that count as "this person has (or will have) had these posts".
_HELD = (
    DeliveryStatus.QUEUED.value,
    DeliveryStatus.SENDING.value,
    DeliveryStatus.SENT.value,
    DeliveryStatus.DEFERRED.value,
)
# Topics are grouped and matched as the stored JSON text: equal lists, equal text.
_TOPICS_TEXT = sa.cast(U.c.topics, sa.Text)


@dataclass(frozen=True)
class Group:
    """Subscribers who get the very same digest this edition."""

    newsletter_id: int
    period: Period
    timezone: str
    send_hour: int
    topics_json: str
    last_digest_at: datetime | None
    received: frozenset[int]  # the featured candidates they already had
    count: int
    selection: Selection
    scheduled: bool = False  # the scheduler's group: see ``slot_filter``
    alert_states: tuple[int, ...] = ()  # their state for each of the plan's recent alerts


@dataclass(frozen=True)
class History:
    """The bodies that carried each featured candidate (only those some body carried).

    Featured posts are the only ones a window cannot rule out (they may be any age), so only
    they need the history: "had it" means a held delivery of one of these bodies.
    """

    carried: dict[int, tuple[int, ...]]
    # The newsletter's recent alerts: each reader's state for them groups readers too.
    alerts: Alerts = field(default_factory=Alerts)

    def tests(self) -> list[tuple[int, sa.ColumnElement[bool]]]:
        """For each post, the SQL test "this subscriber already had it"."""
        return [
            (
                pid,
                sa.exists().where(
                    D.c.subscriber_id == S.c.id,
                    D.c.body_id.in_(body_ids),
                    D.c.status.in_(_HELD),
                ),
            )
            for pid, body_ids in self.carried.items()
        ]


@dataclass(frozen=True)
class Plan:
    """An edition's candidates, the history they are judged against, and its groups."""

    newsletter: NewsletterConfig
    cadence: str
    pool: CandidatePool
    history: History
    groups: list[Group]


def candidates(
    session: Session,
    newsletter: NewsletterConfig,
    now: datetime,
    alerted: frozenset[int] = frozenset(),
) -> CandidatePool:
    """The posts an edition at ``now`` may use: the last month's, and every featured one, of
    the topics the newsletter draws from, and the posts of its recent ``alerted`` (any age,
    any topic: an alert's story held back from a reader goes into their digest)."""
    since = now - LOOKBACK
    query = select(Post).where(
        sa.or_(
            col(Post.published_at) > since,
            col(Post.first_seen_at) > since,
            col(Post.editor_featured).is_(True),
            col(Post.sticky).is_(True),
            *((col(Post.id).in_(sorted(alerted)),) if alerted else ()),
        )
    )
    drawn = normalize_topics(newsletter.topics)
    posts = [
        Candidate(
            id=p.id or 0,
            title=p.title,
            link=p.link,
            summary=p.summary,
            topics=normalize_topics([*p.categories, *p.tags]),
            published_at=p.published_at,
            first_seen_at=p.first_seen_at,
            featured=is_featured(p, newsletter.featured_categories, now, newsletter.id),
            strip_position=p.strip_position,
            image_url=p.image_url,
            image_alt=p.image_alt,
            author=p.author,
        )
        for p in session.exec(query)
        if not drawn or p.id in alerted or drawn & normalize_topics([*p.categories, *p.tags])
    ]
    return CandidatePool.of(posts)


def featured_history(
    session: Session, pool: CandidatePool, newsletter_id: int, also: frozenset[int] = frozenset()
) -> History:
    """Which bodies of the newsletter's editions carried each of the pool's newest featured
    posts, and the posts ``also`` names (recent alerts': a story held back from a reader who
    had it in a digest already is not carried again); another newsletter's digests do not
    count."""
    featured = [p for p in pool.posts if p.featured][:MAX_FEATURED_CANDIDATES]
    featured += [p for p in pool.posts if p.id in also and p not in featured]
    if not featured:
        return History({})
    since = min(p.first_seen_at for p in featured) - timedelta(days=1)
    carried: dict[int, list[int]] = {p.id: [] for p in featured}
    for body_id, post_ids in session.execute(
        sa.select(Body.id, Body.post_ids)
        .join(E, E.c.id == Body.edition_id)
        .where(col(Body.created_at) >= since, E.c.newsletter_id == newsletter_id)
    ):
        for pid in post_ids or ():
            if pid in carried:
                carried[pid].append(body_id)
    return History({pid: tuple(ids) for pid, ids in carried.items() if ids})


def period_key(newsletter_id: int, period: Period) -> str:
    """The once-key of a newsletter's digest for a period: ``"1/daily:2026-11-29"``."""
    return f"{newsletter_id}/{period.key}"


def slot_filter(
    newsletter_id: int,
    cadence: str,
    tz: str,
    hour: int,
    period: Period,
    *,
    scheduled: bool = False,
) -> sa.ColumnElement[bool]:
    """Active readers of a newsletter in one (cadence, timezone, send hour) without this
    period's digest of it; over ``subscribers`` joined with their ``subscriptions``;
    ``scheduled`` leaves out those who became active in this period after its send hour.

    The scheduler's rule: a reader imported or confirmed after their send hour gets their
    first digest at their next one, not within the minute (a 50,000-row import at 3 pm must
    not mail everyone at 3 pm), while a reader who was active at the hour and missed it
    because digest was down still gets it. An operator's edition takes every active reader.
    """
    already = sa.exists().where(
        D.c.subscriber_id == S.c.id, D.c.period_key == period_key(newsletter_id, period)
    )
    since = U.c.active_since
    # A time past the period's end can only come from a clock set back: nothing says they
    # joined late in this period, so they are not held back.
    joined = (
        (sa.or_(since.is_(None), since <= period.due, since >= period.end),) if scheduled else ()
    )
    return sa.and_(
        U.c.subscriber_id == S.c.id,
        U.c.newsletter_id == newsletter_id,
        U.c.status == SubscriberStatus.ACTIVE.value,
        U.c.cadence == cadence,
        S.c.timezone == tz,
        S.c.send_hour == hour,
        ~already,
        *joined,
    )


def members(cadence: str, group: Group, history: History) -> sa.ColumnElement[bool]:
    """The SQL test "this subscriber is in ``group``", rebuilt from the group's data."""
    last = group.last_digest_at
    return sa.and_(
        slot_filter(
            group.newsletter_id,
            cadence,
            group.timezone,
            group.send_hour,
            group.period,
            scheduled=group.scheduled,
        ),
        group.topics_json == _TOPICS_TEXT,
        U.c.last_digest_at.is_(None) if last is None else U.c.last_digest_at == last,
        *((test if pid in group.received else ~test) for pid, test in history.tests()),
        *(
            state == value
            for state, value in zip(history.alerts.states(), group.alert_states, strict=True)
        ),
    )


def recipients(session: Session, cadence: str, group: Group, history: History) -> list[str]:
    """The addresses in ``group``, in address order."""
    query = (
        sa.select(S.c.email)
        .select_from(S.join(U, U.c.subscriber_id == S.c.id))
        .where(members(cadence, group, history))
        .order_by(S.c.email)
    )
    return list(session.execute(query).scalars())


def active_readers(newsletter_id: int, cadence: str) -> sa.ColumnElement[bool]:
    """Active readers of the newsletter in ``cadence``, over subscribers joined with their
    subscriptions."""
    return sa.and_(
        U.c.newsletter_id == newsletter_id,
        U.c.status == SubscriberStatus.ACTIVE.value,
        U.c.cadence == cadence,
    )


READERS = S.join(U, U.c.subscriber_id == S.c.id)


def due_slots(
    session: Session, newsletter: NewsletterConfig, cadence: str, now: datetime, due_only: bool
) -> list[tuple[str, int, Period]]:
    """The (timezone, send hour) slots of active readers whose digest is due now."""
    rows = session.execute(
        sa.select(S.c.timezone, S.c.send_hour)
        .select_from(READERS)
        .where(active_readers(newsletter.id, cadence))
        .group_by(S.c.timezone, S.c.send_hour)
    ).all()
    slots = []
    for tz, hour in rows:
        period = period_for(cadence, tz, hour, now, weekly_day=newsletter.weekly_day)
        if not due_only or is_due(period, now):
            slots.append((tz, hour, period))
    return slots


def plan(
    session: Session,
    settings: Settings,
    newsletter: NewsletterConfig,
    *,
    cadence: str,
    now: datetime,
    due_only: bool = True,
) -> Plan:
    """The groups of a newsletter's edition at ``now`` and each one's selection; writes
    nothing."""
    Cadence(cadence)
    nid = newsletter.id
    alerts = recent_alerts(session, nid, cadence, now)
    pool = candidates(session, newsletter, now, alerts.post_ids)
    history = replace(featured_history(session, pool, nid, alerts.post_ids), alerts=alerts)
    received = history.tests()
    states = alerts.states()
    limits = Limits.from_settings(settings)
    groups: list[Group] = []
    for tz, hour, period in due_slots(session, newsletter, cadence, now, due_only):
        inner = (
            sa.select(
                _TOPICS_TEXT.label("t"),
                U.c.last_digest_at.label("l"),
                *(
                    sa.case((test, 1), else_=0).label(f"r{i}")
                    for i, (_, test) in enumerate(received)
                ),
                *(state.label(f"a{i}") for i, state in enumerate(states)),
            )
            .select_from(READERS)
            .where(slot_filter(nid, cadence, tz, hour, period, scheduled=due_only))
            .subquery()
        )
        keys = [
            inner.c.t,
            inner.c.l,
            *(inner.c[f"r{i}"] for i in range(len(received))),
            *(inner.c[f"a{i}"] for i in range(len(states))),
        ]
        rows = session.execute(sa.select(*keys, sa.func.count()).group_by(*keys)).all()
        for row in rows:
            topics_json, count = row[0], row[-1]
            flags = row[2 : 2 + len(received)]
            alert_states = tuple(int(v) for v in row[2 + len(received) : -1])
            last = _as_time(session, row[1])
            had = frozenset(pid for (pid, _), flag in zip(received, flags, strict=True) if flag)
            alerted, held = alerts.split(alert_states)
            profile = Profile(
                cadence=cadence,
                topics=normalize_topics(_topics(topics_json)),
                last_digest_at=last,
                received=had,
                alerted=alerted,
                held=held,
            )
            selection = select_posts(pool, profile, now, limits)
            groups.append(
                Group(
                    nid,
                    period,
                    tz,
                    hour,
                    topics_json,
                    last,
                    had,
                    count,
                    selection,
                    due_only,
                    alert_states,
                )
            )
    return Plan(newsletter, cadence, pool, history, groups)


def _as_time(session: Session, value: object) -> datetime | None:
    """A grouped ``last_digest_at`` as an aware time (SQLite hands it back as text)."""
    if isinstance(value, str):
        return U.c.last_digest_at.type.process_result_value(value, session.get_bind().dialect)
    return value  # type: ignore[return-value]


def _topics(topics_json: str) -> list[str]:
    value = json.loads(topics_json) if topics_json else []
    return [str(t) for t in value] if isinstance(value, list) else []
