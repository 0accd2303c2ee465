"""List hygiene's reading half: each active reader's facts in one query, and the rule's
verdict on them (``hygiene_rules``). Changes nothing: a pass reads here (in a read
transaction of its own, so a long read holds no write lock) and writes in ``hygiene``, where
every write re-checks what it read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.db import in_batches
from digest.hygiene_rules import Policy, ReaderFacts, Verdict, verdict
from digest.models import Delivery, Edition, Subscriber, Subscription
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus

U = Subscription.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
ACTIVE = SubscriberStatus.ACTIVE.value
SENT = DeliveryStatus.SENT.value
# A question in one of these may still go out; any other unsent end means it never will.
_ON_ITS_WAY = frozenset(
    s.value for s in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED)
)
REPERMISSION = "repermission"  # what the once-key names: "2/repermission:2026-12-02"
# Editions made up to this long before the window may have digests sent inside it (a weekly
# edition's mail goes out over its send-by time).
_EDITION_MARGIN = timedelta(days=8)


def ask_key(newsletter_id: int, at: datetime) -> str:
    """The once-key of a question queued at ``at`` (a UTC day)."""
    return f"{newsletter_id}/{REPERMISSION}:{at.astimezone(UTC).date().isoformat()}"


@dataclass(frozen=True)
class Reviewed:
    """One reader the pass looked at, and its verdict."""

    subscription_id: int
    subscriber_id: int
    email: str
    facts: ReaderFacts
    verdict: Verdict


def review(
    session: Session,
    newsletter_id: int,
    policy: Policy,
    now: datetime,
    tracked_since: datetime | None = None,
) -> list[Reviewed]:
    """Every active reader of the newsletter who may be asked, waits for an answer or is due
    to be retired, with the rule's verdict at ``now`` given per-reader tracking since
    ``tracked_since`` (None: not in force); changes nothing."""
    start = policy.window_start(now)
    editions = sa.select(E.c.id).where(
        E.c.newsletter_id == newsletter_id,
        E.c.is_test == sa.false(),
        E.c.edition_at >= start - _EDITION_MARGIN,
    )
    sent = (
        sa.select(D.c.subscriber_id, sa.func.count().label("n"))
        .where(D.c.edition_id.in_(editions), D.c.status == SENT, D.c.sent_at >= start)
        .group_by(D.c.subscriber_id)
        .subquery()
    )
    joined = sa.func.coalesce(U.c.active_since, U.c.confirmed_at, U.c.created_at)
    # Asked already, or silent through the whole window: nobody else can be touched; and
    # while the window is not wholly tracked, only those asked.
    candidates: list[sa.ColumnElement[bool]] = [U.c.repermission_sent_at.is_not(None)]
    if tracked_since is not None and tracked_since <= start:
        silent = sa.or_(U.c.last_click_at.is_(None), U.c.last_click_at < start)
        candidates.append(sa.and_(joined <= start, silent))
    rows = session.execute(
        sa.select(
            U.c.id,
            U.c.subscriber_id,
            S.c.email,
            joined,
            sa.func.coalesce(sent.c.n, 0),
            U.c.last_click_at,
            U.c.repermission_sent_at,
        )
        .select_from(
            U.join(S, S.c.id == U.c.subscriber_id).outerjoin(
                sent, sent.c.subscriber_id == U.c.subscriber_id
            )
        )
        .where(
            U.c.newsletter_id == newsletter_id,
            U.c.status == ACTIVE,
            S.c.tracking_opt_out == sa.false(),
            sa.or_(*candidates),
        )
        .order_by(U.c.subscriber_id)
    ).all()
    questions = _questions(session, newsletter_id, [r[1] for r in rows if r[6] is not None])
    found = []
    for sub_id, person_id, email, since, digests, clicked, asked in rows:
        sent_at, lost = None, False
        if asked is not None:
            status, at = questions.get((person_id, ask_key(newsletter_id, asked)), (None, None))
            sent_at = at if status == SENT else None
            lost = status != SENT and status not in _ON_ITS_WAY
        facts = ReaderFacts(since, int(digests), clicked, asked, sent_at, lost)
        found.append(
            Reviewed(sub_id, person_id, email, facts, verdict(facts, policy, now, tracked_since))
        )
    return found


def _questions(
    session: Session, newsletter_id: int, person_ids: Sequence[int]
) -> dict[tuple[int, str], tuple[str, datetime | None]]:
    """(reader, once-key) -> (status, sent_at) of that question's mail, for the readers asked."""
    found: dict[tuple[int, str], tuple[str, datetime | None]] = {}
    for chunk in in_batches(sorted(set(person_ids))):
        for person_id, key, status, at in session.execute(
            sa.select(D.c.subscriber_id, D.c.period_key, D.c.status, D.c.sent_at).where(
                D.c.subscriber_id.in_(chunk),
                D.c.kind == DeliveryKind.REPERMISSION.value,
                D.c.period_key.startswith(f"{newsletter_id}/{REPERMISSION}:"),
            )
        ):
            found[(person_id, key)] = (status, at)
    return found
