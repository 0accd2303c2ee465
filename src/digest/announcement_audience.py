"""Who an announcement reaches, as SQL over subscribers joined with their subscriptions.

The audience (``announcement_rules.Audience``) becomes one WHERE clause, which the outbox's
``INSERT ... SELECT`` takes as it is: no reader passes through Python, however many. Topics
and addresses are JSON arrays read by the database itself (``json_each`` on SQLite,
``json_array_elements_text`` on PostgreSQL), so a list of 50,000 addresses is one parameter,
not 50,000.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlmodel import Session

from digest.announcement_rules import Audience
from digest.models import Delivery, Subscriber, Subscription
from digest.states import SubscriberStatus

S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]
READERS = S.join(U, U.c.subscriber_id == S.c.id)
SAMPLE = 10  # addresses a dry run shows


def _elements(dialect: str, array: sa.ColumnElement[object]) -> sa.TableValuedAlias:
    """The strings of a JSON array as a one-column table (``value``)."""
    if dialect == "postgresql":
        return sa.func.json_array_elements_text(array).table_valued("value")
    return sa.func.json_each(array).table_valued("value")


def _json_param(dialect: str, values: list[str]) -> sa.ColumnElement[object]:
    text = sa.bindparam(None, json.dumps(values), type_=sa.String)
    return sa.cast(text, sa.JSON) if dialect == "postgresql" else text


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _spellings(topics: tuple[str, ...]) -> set[str]:
    """What SQL ``lower()`` makes of a topic as readers may have written it: PostgreSQL lowers
    every letter, SQLite only A to Z, so "Économie" stays "Économie" there. Both forms of the
    usual capitalisations (as typed, lower, upper, title) match, on either store."""
    found: set[str] = set()
    for topic in topics:
        for variant in (topic, topic.lower(), topic.upper(), topic.title(), topic.capitalize()):
            found.update((variant.lower(), variant.translate(_ASCII_LOWER)))
    return found


def members(session: Session, audience: Audience) -> sa.ColumnElement[bool]:
    """The test "this subscriber, with this subscription, is in the audience"."""
    dialect = session.get_bind().dialect.name
    tests: list[sa.ColumnElement[bool]] = [
        U.c.newsletter_id == audience.newsletter_id,
        U.c.status == SubscriberStatus.ACTIVE.value,
    ]
    if audience.topics:
        # A reader who chose no topics takes every topic; others need one in common.
        theirs = _elements(dialect, U.c.topics)
        wanted = sorted(_spellings(audience.topics))
        common = sa.exists(
            sa.select(sa.literal(1))
            .select_from(theirs)
            .where(sa.func.lower(theirs.c.value).in_(wanted))
        )
        tests.append(sa.or_(sa.func.json_array_length(U.c.topics) == 0, common))
    if audience.cadence:
        tests.append(U.c.cadence == audience.cadence)
    # When they joined: the day they became active (confirmed, for rows older than that field).
    joined = sa.func.coalesce(U.c.active_since, U.c.confirmed_at)
    if audience.joined_after is not None:
        tests.append(joined >= audience.joined_after)
    if audience.joined_before is not None:
        tests.append(joined < audience.joined_before)
    if audience.addresses:
        listed = _elements(dialect, _json_param(dialect, list(audience.addresses)))
        tests.append(S.c.email.in_(sa.select(listed.c.value)))
    return sa.and_(*tests)


def count(session: Session, audience: Audience) -> int:
    """How many readers the audience has now."""
    query = sa.select(sa.func.count()).select_from(READERS).where(members(session, audience))
    return int(session.execute(query).scalar_one())


def sample(session: Session, audience: Audience, limit: int = SAMPLE) -> list[str]:
    """The first ``limit`` addresses of the audience, in address order."""
    query = (
        sa.select(S.c.email)
        .select_from(READERS)
        .where(members(session, audience))
        .order_by(S.c.email)
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def zones(session: Session, audience: Audience) -> dict[str, int]:
    """The audience's readers by timezone: what a local-hour send is planned over."""
    query = (
        sa.select(S.c.timezone, sa.func.count())
        .select_from(READERS)
        .where(members(session, audience))
        .group_by(S.c.timezone)
    )
    return {tz: int(n) for tz, n in session.execute(query)}


def queued_before(body_id: int) -> sa.ColumnElement[bool]:
    """The test "this subscriber already has this announcement" (its one body, indexed), so a
    tick leaves out readers queued before without trying their rows again.

    ``IN (SELECT ...)``, not a correlated ``EXISTS``: PostgreSQL reads the subquery once,
    while with an ``EXISTS`` over a near-empty outbox it chose a nested loop that scanned the
    table once per reader, rows being inserted included (528 s instead of 2 s for 100,000
    readers; bench/oneoff_queue.py).
    """
    return S.c.id.in_(
        sa.select(D.c.subscriber_id).where(D.c.body_id == body_id, D.c.subscriber_id.isnot(None))
    )


def in_zones(session: Session, audience: Audience, chosen: list[str]) -> sa.ColumnElement[bool]:
    """The audience's readers in the ``chosen`` timezones only."""
    return sa.and_(members(session, audience), S.c.timezone.in_(chosen))
