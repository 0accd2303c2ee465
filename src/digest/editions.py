"""Making an edition: who is due, what each subscriber gets, one render per shared body, and
the deliveries queued set-wise in the database.

Subscribers are never loaded one by one. They are grouped in SQL by what decides their digest
(timezone and send hour, topics, where their last digest ended, and which of the currently
featured posts they already had); selection (``compose/select.py``) runs once per group, each
distinct selection is rendered once, and one ``INSERT ... SELECT`` per group queues the mail.
The unique key (subscriber, period) on deliveries makes all of it safe to run twice, from two
processes, or after a crash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest import links
from digest.compose.render import DigestRenderer, RenderedBody
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
from digest.db import Database
from digest.delivery import outbox
from digest.mail.message import Sender
from digest.models import Body, Delivery, Edition, Post, Subscriber
from digest.periods import Period, is_due, period_for
from digest.posts.featuring import is_featured
from digest.states import Cadence, DeliveryStatus, SubscriberStatus

S = Subscriber.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
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


@dataclass
class Group:
    """Subscribers who get the very same digest this edition."""

    period: Period
    timezone: str
    topics_json: str
    last_digest_at: datetime | None
    received: frozenset[int]
    count: int
    selection: Selection
    where: sa.ColumnElement[bool]


@dataclass
class EditionReport:
    """What making an edition did (or, on a dry run, would do)."""

    key: str
    cadence: str
    edition_id: int | None = None
    recipients: int = 0
    skipped: int = 0
    bodies: int = 0
    groups: list[Group] = field(default_factory=list)


def candidates(session: Session, settings: Settings, now: datetime) -> CandidatePool:
    """The posts an edition at ``now`` may use: the last month's, and every featured one."""
    since = now - LOOKBACK
    query = select(Post).where(
        sa.or_(
            col(Post.published_at) > since,
            col(Post.first_seen_at) > since,
            col(Post.editor_featured).is_(True),
            col(Post.sticky).is_(True),
        )
    )
    posts = [
        Candidate(
            id=p.id or 0,
            title=p.title,
            link=p.link,
            summary=p.summary,
            topics=normalize_topics([*p.categories, *p.tags]),
            published_at=p.published_at,
            first_seen_at=p.first_seen_at,
            featured=is_featured(p, settings.featured_categories, now),
            image_url=p.image_url,
            image_alt=p.image_alt,
            author=p.author,
        )
        for p in session.exec(query)
    ]
    return CandidatePool.of(posts)


def _received_columns(
    session: Session, pool: CandidatePool
) -> list[tuple[int, sa.ColumnElement[bool]]]:
    """For each featured candidate, a SQL test "this subscriber already had it".

    Featured posts are the only ones a window cannot rule out (they may be any age), so only
    they need the history: the bodies that carried each, and the deliveries of those bodies.
    """
    featured = [p for p in pool.posts if p.featured][:MAX_FEATURED_CANDIDATES]
    if not featured:
        return []
    since = min(p.first_seen_at for p in featured) - timedelta(days=1)
    carried: dict[int, list[int]] = {p.id: [] for p in featured}
    for body_id, post_ids in session.execute(
        sa.select(Body.id, Body.post_ids).where(col(Body.created_at) >= since)
    ):
        for pid in post_ids or ():
            if pid in carried:
                carried[pid].append(body_id)
    tests = []
    for pid, body_ids in carried.items():
        if body_ids:
            had = sa.exists().where(
                D.c.subscriber_id == S.c.id, D.c.body_id.in_(body_ids), D.c.status.in_(_HELD)
            )
            tests.append((pid, had))
    return tests


def _slots(
    session: Session, settings: Settings, cadence: str, now: datetime, due_only: bool
) -> list[tuple[str, int, Period]]:
    """The (timezone, send hour) slots of active subscribers whose digest is due now."""
    rows = session.execute(
        sa.select(S.c.timezone, S.c.send_hour)
        .where(S.c.status == SubscriberStatus.ACTIVE.value, S.c.cadence == cadence)
        .group_by(S.c.timezone, S.c.send_hour)
    ).all()
    slots = []
    for tz, hour in rows:
        period = period_for(cadence, tz, hour, now, weekly_day=settings.weekly_day)
        if not due_only or is_due(period, now):
            slots.append((tz, hour, period))
    return slots


def _slot_filter(cadence: str, tz: str, hour: int, period: Period) -> sa.ColumnElement[bool]:
    already = sa.exists().where(D.c.subscriber_id == S.c.id, D.c.period_key == period.key)
    return sa.and_(
        S.c.status == SubscriberStatus.ACTIVE.value,
        S.c.cadence == cadence,
        S.c.timezone == tz,
        S.c.send_hour == hour,
        ~already,
    )


def plan(
    session: Session,
    settings: Settings,
    *,
    cadence: str,
    now: datetime,
    due_only: bool = True,
    pool: CandidatePool | None = None,
) -> list[Group]:
    """The groups of an edition at ``now`` and each one's selection; writes nothing."""
    Cadence(cadence)
    pool = pool if pool is not None else candidates(session, settings, now)
    received = _received_columns(session, pool)
    limits = Limits.from_settings(settings)
    groups: list[Group] = []
    topics_text = sa.cast(S.c.topics, sa.Text)
    for tz, hour, period in _slots(session, settings, cadence, now, due_only):
        slot = _slot_filter(cadence, tz, hour, period)
        inner = (
            sa.select(
                topics_text.label("t"),
                S.c.last_digest_at.label("l"),
                *(
                    sa.case((test, 1), else_=0).label(f"r{i}")
                    for i, (_, test) in enumerate(received)
                ),
            )
            .where(slot)
            .subquery()
        )
        keys = [inner.c.t, inner.c.l, *(inner.c[f"r{i}"] for i in range(len(received)))]
        rows = session.execute(sa.select(*keys, sa.func.count()).group_by(*keys)).all()
        for row in rows:
            topics_json, last, flags, count = row[0], row[1], row[2:-1], row[-1]
            last = _as_time(session, last)
            pairs = list(zip(received, flags, strict=True))
            had = frozenset(pid for (pid, _), flag in pairs if flag)
            where = sa.and_(
                slot,
                topics_text == topics_json,
                S.c.last_digest_at.is_(None) if last is None else S.c.last_digest_at == last,
                *((test if flag else ~test) for (_, test), flag in pairs),
            )
            profile = Profile(
                cadence=cadence,
                topics=normalize_topics(_topics(topics_json)),
                last_digest_at=last,
                received=had,
            )
            selection = select_posts(pool, profile, now, limits)
            groups.append(Group(period, tz, topics_json, last, had, count, selection, where))
    return groups


def _as_time(session: Session, value: object) -> datetime | None:
    """A grouped ``last_digest_at`` as an aware time (SQLite hands it back as text)."""
    if isinstance(value, str):
        return S.c.last_digest_at.type.process_result_value(value, session.get_bind().dialect)
    return value  # type: ignore[return-value]


def _topics(topics_json: str) -> list[str]:
    value = json.loads(topics_json) if topics_json else []
    return [str(t) for t in value] if isinstance(value, list) else []


def edition_key(cadence: str, now: datetime, *, due_only: bool) -> str:
    """Scheduled editions share one key per UTC hour (ticks within it add to the same edition);
    an edition made on demand gets its own."""
    if due_only:
        return f"{cadence}:{now:%Y-%m-%dT%H}Z"
    return f"{cadence}:now:{now:%Y-%m-%dT%H:%M:%S}Z"


def _get_or_create_edition(session: Session, key: str, cadence: str, now: datetime) -> Edition:
    found = session.exec(select(Edition).where(Edition.key == key)).first()
    if found is not None:
        return found
    try:
        with session.begin_nested():
            edition = Edition(key=key, cadence=cadence, edition_at=now, created_at=now)
            session.add(edition)
    except sa.exc.IntegrityError:
        # Another process made it between our look and our insert: use theirs.
        return session.exec(select(Edition).where(Edition.key == key)).one()
    return edition


def make_edition(
    db: Database,
    settings: Settings,
    *,
    cadence: str,
    now: datetime,
    due_only: bool = True,
    dry_run: bool = False,
    renderer: DigestRenderer | None = None,
) -> EditionReport | None:
    """Make (or add to) the edition of ``cadence`` at ``now``; None when nobody is due.

    ``due_only`` keeps to each subscriber's local send hour (the scheduler); without it every
    active subscriber of the cadence who has not had this period's digest is included (an
    operator's ``digest send``). Either way a subscriber gets at most one digest per period.
    """
    key = edition_key(cadence, now, due_only=due_only)
    with db.transaction() as session:
        pool = candidates(session, settings, now)
        groups = plan(session, settings, cadence=cadence, now=now, due_only=due_only, pool=pool)
        if not groups:
            return None
        report = EditionReport(key=key, cadence=cadence, groups=groups)
        if dry_run:
            report.recipients = sum(g.count for g in groups if not g.selection.skip)
            report.skipped = sum(g.count for g in groups if g.selection.skip)
            report.bodies = len({g.selection.post_ids for g in groups if not g.selection.skip})
            return report
        renderer = renderer or DigestRenderer(settings)
        edition = _get_or_create_edition(session, key, cadence, now)
        report.edition_id = edition.id
        _write(session, settings, renderer, edition, groups, pool, now, report)
    return report


def _write(
    session: Session,
    settings: Settings,
    renderer: DigestRenderer,
    edition: Edition,
    groups: Sequence[Group],
    pool: CandidatePool,
    now: datetime,
    report: EditionReport,
) -> None:
    assert edition.id is not None
    domain = Sender.from_settings(settings).domain
    prefix = outbox.digest_prefix(edition.id)
    archive = links.archive_url(settings, edition.id)
    body_ids: dict[str, int] = {}
    for group in groups:
        if group.selection.skip:
            report.skipped += outbox.record_skips(
                session,
                edition_id=edition.id,
                period_key=group.period.key,
                subscriber_filter=group.where,
                message_id_prefix=prefix,
                domain=domain,
                reason=group.selection.reason,
            )
            continue
        local_date = now.astimezone(ZoneInfo(group.timezone)).date()
        rendered = renderer.render_body(
            group.selection, cadence=edition.cadence, local_date=local_date, archive_url=archive
        )
        body_id = body_ids.get(rendered.key)
        if body_id is None:
            body_id = _store_body(session, edition.id, rendered)
            body_ids[rendered.key] = body_id
        added = outbox.enqueue_digests(
            session,
            edition_id=edition.id,
            body_id=body_id,
            period_key=group.period.key,
            send_by=group.period.end,
            subscriber_filter=group.where,
            message_id_prefix=prefix,
            domain=domain,
        )
        report.recipients += added
    # Their next window starts at this edition: set for everyone this edition queued mail for.
    session.execute(
        sa.update(S)
        .where(
            S.c.id.in_(
                sa.select(D.c.subscriber_id).where(
                    D.c.edition_id == edition.id, D.c.status != DeliveryStatus.SKIPPED.value
                )
            )
        )
        .values(last_digest_at=edition.edition_at)
    )
    report.bodies = len(body_ids)
    edition.recipients += report.recipients
    edition.skipped += report.skipped
    if not edition.web_html:
        _set_web_version(settings, renderer, edition, pool, now)
    session.add(edition)
    session.flush()


def _store_body(session: Session, edition_id: int, rendered: RenderedBody) -> int:
    body = Body(
        edition_id=edition_id,
        digest_key=rendered.key,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        post_ids=list(rendered.post_ids),
    )
    session.add(body)
    session.flush()
    assert body.id is not None
    return body.id


def _set_web_version(
    settings: Settings,
    renderer: DigestRenderer,
    edition: Edition,
    pool: CandidatePool,
    now: datetime,
) -> None:
    """The archive page: what a reader of every topic, new this period, would have got."""
    profile = Profile(cadence=edition.cadence)
    selection = select_posts(pool, profile, now, Limits.from_settings(settings))
    if selection.skip:
        return
    local_date = now.astimezone(ZoneInfo(settings.timezone)).date()
    body = renderer.render_body(selection, cadence=edition.cadence, local_date=local_date)
    edition.subject = body.subject
    edition.post_ids = list(selection.post_ids)
    edition.web_html = renderer.render_web_version(
        selection, cadence=edition.cadence, local_date=local_date
    )


def run_due(
    db: Database, settings: Settings, now: datetime, *, renderer: DigestRenderer | None = None
) -> list[EditionReport]:
    """The scheduler's tick: the editions of both cadences for whoever is due at ``now``.

    A long-running caller passes its renderer, so templates are compiled once, not per tick.
    """
    renderer = renderer or DigestRenderer(settings)
    reports = []
    for cadence in Cadence:
        report = make_edition(db, settings, cadence=cadence.value, now=now, renderer=renderer)
        if report is not None:
            reports.append(report)
    return reports


def selection_for(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    subscriber: Subscriber | None = None,
    cadence: str | None = None,
) -> Selection:
    """What one subscriber (or a new subscriber of every topic) would get at ``now``.

    The same rules and the same history as ``make_edition``, for ``digest preview`` and test
    sends; it writes nothing.
    """
    pool = candidates(session, settings, now)
    if subscriber is None:
        profile = Profile(cadence=cadence or Cadence.DAILY.value)
    else:
        had: frozenset[int] = frozenset()
        tests = _received_columns(session, pool)
        if tests:
            flags = session.execute(
                sa.select(*(t for _, t in tests)).where(S.c.id == subscriber.id)
            ).one()
            had = frozenset(pid for (pid, _), flag in zip(tests, flags, strict=True) if flag)
        profile = Profile(
            cadence=cadence or subscriber.cadence,
            topics=normalize_topics(subscriber.topics),
            last_digest_at=subscriber.last_digest_at,
            received=had,
        )
    return select_posts(pool, profile, now, Limits.from_settings(settings))


@dataclass(frozen=True)
class NextRun:
    """When the scheduler will next send digests to one slot of subscribers."""

    at: datetime
    cadence: str
    timezone: str
    send_hour: int
    subscribers: int


def next_runs(
    session: Session, settings: Settings, now: datetime, *, limit: int = 5
) -> list[NextRun]:
    """The next digest sends, soonest first: each slot's due time in its current period if it
    has not had that period's digest, else in the next period."""
    runs = []
    rows = session.execute(
        sa.select(S.c.cadence, S.c.timezone, S.c.send_hour, sa.func.count())
        .where(S.c.status == SubscriberStatus.ACTIVE.value)
        .group_by(S.c.cadence, S.c.timezone, S.c.send_hour)
    ).all()
    for cadence, tz, hour, count in rows:
        period = period_for(cadence, tz, hour, now, weekly_day=settings.weekly_day)
        pending = session.execute(
            sa.select(sa.func.count()).where(_slot_filter(cadence, tz, hour, period))
        ).scalar_one()
        if not pending or now >= period.end:
            period = period_for(cadence, tz, hour, period.end, weekly_day=settings.weekly_day)
        runs.append(NextRun(max(period.due, now), cadence, tz, hour, count))
    return sorted(runs, key=lambda r: (r.at, r.cadence, r.timezone))[:limit]
