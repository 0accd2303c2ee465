"""Readers per newsletter and day: who joined (``subscription_days``, kept by the store's
triggers) and who left by unsubscribing, by a bounce or by a complaint.

The leavers are counted from ``subscriptions`` by status (its index), so a read costs the
readers who ever left, not the whole list; a reader who came back since is not counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.engagement_report import DayReport
from digest.models import Newsletter, Subscription
from digest.models_counts import SubscriptionDay
from digest.states import SubscriberStatus

N = Newsletter.__table__  # type: ignore[attr-defined]
S = Subscription.__table__  # type: ignore[attr-defined]
DAYS = SubscriptionDay.__table__  # type: ignore[attr-defined]


def _day(session: Session, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
    """The UTC day of a timestamp column, as 'YYYY-MM-DD' text on both stores."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.substr(column, 1, 10)


def days(
    session: Session, *, today: date, span: int, newsletter_id: int | None = None
) -> list[DayReport]:
    """Per newsletter (one, or every one not archived) and day of the last ``span`` days up to
    ``today`` (UTC), newest first: readers who joined, and who left by unsubscribing, by a
    bounce or by a complaint (still in that status: one who came back is not counted)."""
    first = today - timedelta(days=max(span, 1) - 1)
    names = {
        i: s
        for i, s, gone in session.execute(
            sa.select(N.c.id, N.c.slug, N.c.archived_at).order_by(N.c.position, N.c.id)
        )
        if (newsletter_id is None and gone is None) or i == newsletter_id
    }
    joined: Counter[tuple[int, str]] = Counter()
    for nl, day, n in session.execute(
        sa.select(DAYS.c.newsletter_id, DAYS.c.day, sa.func.sum(DAYS.c.joined))
        .where(DAYS.c.day >= first, DAYS.c.day <= today)
        .group_by(DAYS.c.newsletter_id, DAYS.c.day)
    ):
        joined[(nl, day.isoformat() if isinstance(day, date) else str(day))] += int(n or 0)
    left: Counter[tuple[int, str, str]] = Counter()
    since = datetime.combine(first, datetime.min.time()).replace(tzinfo=UTC)
    for status, stamp in (
        (SubscriberStatus.UNSUBSCRIBED.value, S.c.unsubscribed_at),
        (SubscriberStatus.BOUNCED.value, S.c.updated_at),
        (SubscriberStatus.COMPLAINED.value, S.c.updated_at),
    ):
        day = _day(session, stamp)
        for nl, d, n in session.execute(
            sa.select(S.c.newsletter_id, day, sa.func.count())
            .where(S.c.status == status, stamp >= since)
            .group_by(S.c.newsletter_id, day)
        ):
            left[(nl, str(d), status)] += int(n)
    found = []
    for nl, slug in names.items():
        for i in range(span):
            d = today - timedelta(days=i)
            key = d.isoformat()
            found.append(
                DayReport(
                    slug,
                    d,
                    joined[(nl, key)],
                    left[(nl, key, SubscriberStatus.UNSUBSCRIBED.value)],
                    left[(nl, key, SubscriberStatus.BOUNCED.value)],
                    left[(nl, key, SubscriberStatus.COMPLAINED.value)],
                )
            )
    return found
