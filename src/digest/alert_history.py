"""What each reader had of a newsletter's recent breaking-news alerts, as a digest needs it.

A digest leaves out of Latest Posts a story its reader was alerted to, and carries every story
whose alert was held back from them: by their interruption budget, by their quiet hours, or
because it could not go out in time. Alerts are few (a handful a day), so planning turns each
recent one into one grouping column, the reader's state for it: none, alerted or held. Once a
digest has carried a held story, its alert row becomes ``folded``, so no later digest carries
it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.alert_timing import once_key
from digest.clock import utcnow
from digest.models import Alert, Delivery, Subscriber
from digest.periods import cadence_length
from digest.states import DeliveryStatus

S = Subscriber.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
A = Alert.__table__  # type: ignore[attr-defined]

#: The reader's state for one alert.
NONE, ALERTED, HELD = 0, 1, 2
#: An alert row in these has gone, or is going, to the reader: no repeat in Latest Posts.
ALERTED_STATES = tuple(
    s.value
    for s in (
        DeliveryStatus.QUEUED,
        DeliveryStatus.SENDING,
        DeliveryStatus.SENT,
        DeliveryStatus.DEFERRED,
    )
)
#: ... in these it never went (held back, past its send-by time, given up): the digest takes it.
HELD_STATES = tuple(
    s.value for s in (DeliveryStatus.HELD, DeliveryStatus.SKIPPED, DeliveryStatus.FAILED)
)
#: Alerts looked at beyond the cadence's own period: a day's slack for late or moved digests.
SLACK = timedelta(days=1)


@dataclass(frozen=True)
class RecentAlert:
    """One alert of the newsletter recent enough to matter to its next digests."""

    id: int
    post_id: int
    once_key: str  # its deliveries' once-key, "1/alert:7"


@dataclass(frozen=True)
class Alerts:
    """A newsletter's recent alerts, in a fixed order (each one's column in a plan)."""

    recent: tuple[RecentAlert, ...] = ()

    @property
    def post_ids(self) -> frozenset[int]:
        """The posts these alerts were about."""
        return frozenset(a.post_id for a in self.recent)

    def states(self) -> list[sa.ColumnElement[int]]:
        """For each alert, the SQL of a reader's state for it (over ``subscribers``)."""
        exprs: list[sa.ColumnElement[int]] = []
        for alert in self.recent:
            status = (
                sa.select(D.c.status)
                .where(D.c.subscriber_id == S.c.id, D.c.period_key == alert.once_key)
                .scalar_subquery()
            )
            exprs.append(
                sa.case(
                    (status.in_(ALERTED_STATES), ALERTED),
                    (status.in_(HELD_STATES), HELD),
                    else_=NONE,
                )
            )
        return exprs

    def split(self, states: tuple[int, ...]) -> tuple[frozenset[int], frozenset[int]]:
        """The posts a reader with ``states`` was alerted to, and those held back from them."""
        pairs = list(zip(self.recent, states, strict=True))
        alerted = frozenset(a.post_id for a, s in pairs if s == ALERTED)
        held = frozenset(a.post_id for a, s in pairs if s == HELD)
        return alerted, held

    def held_keys(self, states: tuple[int, ...]) -> list[str]:
        """The once-keys of the alerts held back from a reader with ``states``."""
        return [a.once_key for a, s in zip(self.recent, states, strict=True) if s == HELD]


def recent_alerts(session: Session, newsletter_id: int, cadence: str, now: datetime) -> Alerts:
    """The newsletter's alerts raised within the cadence's period (and a day) before ``now``."""
    since = now - cadence_length(cadence) - SLACK
    rows = session.execute(
        sa.select(A.c.id, A.c.post_id)
        .where(A.c.newsletter_id == newsletter_id, A.c.raised_at > since, A.c.raised_at <= now)
        .order_by(A.c.id)
    ).all()
    return Alerts(tuple(RecentAlert(i, p, once_key(newsletter_id, i)) for i, p in rows))


def reader_states(session: Session, alerts: Alerts, subscriber_id: int) -> tuple[int, ...]:
    """One reader's state for each of ``alerts`` (a preview's, a test copy's)."""
    if not alerts.recent:
        return ()
    row = session.execute(sa.select(*alerts.states()).where(S.c.id == subscriber_id)).first()
    return tuple(int(v) for v in row) if row is not None else (NONE,) * len(alerts.recent)


def fold(session: Session, *, edition_id: int, body_id: int, once_keys: list[str]) -> int:
    """Mark the held alerts ``once_keys`` as ``folded`` for everyone this edition's body
    ``body_id`` was queued for: their digest carries those stories now. How many rows."""
    if not once_keys:
        return 0
    carried = D.alias("carried")
    readers = sa.select(carried.c.subscriber_id).where(
        carried.c.edition_id == edition_id, carried.c.body_id == body_id
    )
    result = session.execute(
        sa.update(D)
        .where(
            D.c.period_key.in_(once_keys),
            D.c.status.in_(HELD_STATES),
            D.c.subscriber_id.in_(readers),
        )
        # The state it leaves is kept in front ("skipped -> folded ..."): an expired alert
        # stays counted as expired, and a digest skipped unsent can give it back as it was.
        .values(
            status=DeliveryStatus.FOLDED.value,
            updated_at=utcnow(),
            last_reply=D.c.status + sa.literal(_folded(body_id)),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _folded(body_id: int) -> str:
    return f"{FOLDED_MARK}{body_id}"


#: What a folded alert row's reply says after the state it was folded from.
FOLDED_MARK = " -> folded into the digest body "


def expired_folded() -> sa.ColumnElement[bool]:
    """The test "this folded alert row had expired unsent before it was folded"."""
    return sa.and_(
        D.c.status == DeliveryStatus.FOLDED.value,
        D.c.last_reply.startswith(DeliveryStatus.SKIPPED.value + FOLDED_MARK, autoescape=True),
    )


def unfold(session: Session, late: list[tuple[int, int]]) -> int:
    """Held alerts again for the (subscriber, body) digests in ``late``, skipped unsent: the
    stories folded into them wait for the reader's next digest instead. How many rows."""
    n = 0
    for subscriber_id, body_id in late:
        result = session.execute(
            sa.update(D)
            .where(
                D.c.subscriber_id == subscriber_id,
                D.c.status == DeliveryStatus.FOLDED.value,
                D.c.last_reply.endswith(_folded(body_id), autoescape=True),
            )
            .values(
                status=sa.case(
                    *(
                        (D.c.last_reply.startswith(state + FOLDED_MARK), state)
                        for state in HELD_STATES
                    ),
                    else_=DeliveryStatus.HELD.value,
                ),
                updated_at=utcnow(),
            )
        )
        n += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return n
