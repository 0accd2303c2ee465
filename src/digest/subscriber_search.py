"""Finding people for the desk: by the start of their address or of their name, narrowed by
newsletter, status, cadence and zone, a page at a time in address order.

The search is a prefix search (``email LIKE 'q%'``, ``lower(name) LIKE 'q%'``) so that
PostgreSQL answers it from the two prefix indexes of migration 0010 (``text_pattern_ops``)
with index range scans, at a million subscribers as at ten thousand; a substring search would
read the whole table. Pages are keyset pages (``email > after``), never OFFSET, so the last
page costs what the first does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.util import ClauseAdapter
from sqlmodel import Session, col, select

from digest.models import Subscriber, Subscription

_S = Subscriber.__table__  # type: ignore[attr-defined]
_U = Subscription.__table__  # type: ignore[attr-defined]
#: LIKE's escape character; written before %, _ and itself in what a person typed.
ESCAPE = "\\"
MAX_LIMIT = 200
MAX_QUERY = 320  # no address is longer
#: People a search reads in address order before it turns to the prefix indexes (``_walked``).
WALK = 1000


@dataclass(frozen=True)
class Filters:
    """What narrows a search; None: any."""

    newsletter_id: int | None = None
    status: str | None = None
    cadence: str | None = None
    zone: str | None = None

    @property
    def on_subscription(self) -> bool:
        """Whether some filter is about a subscription (one subscription must match them all)."""
        return any(v is not None for v in (self.newsletter_id, self.status, self.cadence))


@dataclass(frozen=True)
class Row:
    """One person on a page: their row and their subscriptions, by newsletter."""

    person: Subscriber
    subscriptions: Sequence[Subscription]


@dataclass(frozen=True)
class Page:
    """A page of people in address order, and the keys of the pages around it."""

    rows: list[Row] = field(default_factory=list)
    #: The last address of this page when a later page exists (``after=`` of the next link).
    next_after: str | None = None
    #: The first address of this page when an earlier page exists (``before=``).
    prev_before: str | None = None


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character) matched literally."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _plain(text: str | None) -> str:
    """``text`` without NUL characters, which no stored text holds (and PostgreSQL refuses)."""
    return (text or "").replace("\x00", "")


def _store_lower(session: Session, text: str) -> str:
    """``text`` lower-cased by the store's own ``lower()``: the function the name index holds,
    so a name and what is typed fold the same way (SQLite folds ASCII only)."""
    return str(session.execute(sa.select(sa.func.lower(sa.literal(text)))).scalar_one())


def matching(session: Session, q: str) -> sa.ColumnElement[bool] | None:
    """The condition for people whose address or name starts with ``q`` (any case); None for
    an empty ``q``."""
    q = _plain(q).strip()[:MAX_QUERY]
    if not q:
        return None
    # Addresses are stored lower-cased by Python (addresses.normalize_email).
    by_email = _S.c.email.like(escape_like(q.lower()) + "%", escape=ESCAPE)
    by_name = sa.func.lower(_S.c.name).like(
        escape_like(_store_lower(session, q)) + "%", escape=ESCAPE
    )
    return sa.or_(by_email, by_name)


def _where(session: Session, q: str, filters: Filters) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    found = matching(session, q)
    if found is not None:
        where.append(found)
    if filters.zone:
        where.append(_S.c.timezone == _plain(filters.zone))
    if filters.on_subscription:
        # One subscription must match every subscription filter: "active on Sports", not
        # "active somewhere and on Sports".
        sub = [_U.c.subscriber_id == _S.c.id]
        if filters.newsletter_id is not None:
            sub.append(_U.c.newsletter_id == filters.newsletter_id)
        if filters.status:
            sub.append(_U.c.status == filters.status)
        if filters.cadence:
            sub.append(_U.c.cadence == filters.cadence)
        where.append(sa.exists(sa.select(_U.c.id).where(*sub)))
    return where


def statement(
    session: Session,
    q: str,
    filters: Filters,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> sa.Select[tuple[int]]:
    """The query for one page's ids (one more than ``limit``, to know a next page exists)."""
    where = _where(session, q, filters)
    if before is not None:
        where.append(_S.c.email < _plain(before))
    elif after is not None:
        where.append(_S.c.email > _plain(after))
    found = sa.select(_S.c.id, _S.c.email).where(*where)
    email = _S.c.email
    if matching(session, q) is not None:
        # Found through the prefix indexes, then sorted: OFFSET 0 keeps PostgreSQL from
        # walking the address index in order and filtering (it takes the matches for spread
        # evenly, but they sit together: 'olivia' read 771,000 rows of a million, 2.3 s), so a
        # search costs what it finds, not where its prefix falls in the alphabet.
        fenced = found.offset(0).subquery("found")
        found, email = sa.select(fenced.c.id, fenced.c.email), fenced.c.email
    order = email.desc() if before is not None else email
    return found.order_by(order).limit(limit + 1)


def search(
    session: Session,
    q: str = "",
    filters: Filters | None = None,
    after: str | None = None,
    limit: int = 50,
    *,
    before: str | None = None,
) -> Page:
    """A page of people whose address or name starts with ``q``, in address order, after the
    address ``after`` (or the page before the address ``before``)."""
    filters = filters or Filters()
    limit = max(1, min(limit, MAX_LIMIT))
    found = _walked(session, q, filters, after, limit) if before is None else None
    if found is None:
        found = list(
            session.execute(
                statement(session, q, filters, after=after, before=before, limit=limit)
            ).all()
        )
    more = len(found) > limit
    found = found[:limit]
    if before is not None:
        found.reverse()
    ids = [int(r[0]) for r in found]
    people = {int(p.id or 0): p for p in _people(session, ids)}
    subs: dict[int, list[Subscription]] = {i: [] for i in ids}
    for sub in _subscriptions(session, ids):
        subs[sub.subscriber_id].append(sub)
    rows = [Row(people[i], subs[i]) for i in ids if i in people]
    if not rows:
        return Page()
    first, last = rows[0].person.email, rows[-1].person.email
    if before is not None:
        return Page(rows, next_after=last, prev_before=first if more else None)
    return Page(rows, next_after=last if more else None, prev_before=first if after else None)


def _walked(
    session: Session, q: str, filters: Filters, after: str | None, limit: int
) -> list[sa.Row[tuple[int, str]]] | None:
    """A search's next page when it lies within the next ``WALK`` people in address order (a
    prefix much of the list starts with, or one early in the alphabet), else None.

    The prefix indexes cost what a prefix matches ('a' at a million: ~100,000 rows, 0.2-0.5 s);
    reading on in address order costs where the matches begin. A full page found in this
    window is exactly the page (whoever matches beyond it sorts after it); otherwise the
    statement above answers.
    """
    if matching(session, q) is None:
        return None
    ahead = sa.select(_S).order_by(_S.c.email).limit(WALK)
    if after is not None:
        ahead = ahead.where(_S.c.email > _plain(after))
    window = ahead.subquery("ahead")
    adapt = ClauseAdapter(window)
    where = [adapt.traverse(w) for w in _where(session, q, filters)]
    found = list(
        session.execute(
            sa.select(window.c.id, window.c.email)
            .where(*where)
            .order_by(window.c.email)
            .limit(limit + 1)
        ).all()
    )
    return found if len(found) > limit else None


def _people(session: Session, ids: list[int]) -> Sequence[Subscriber]:
    if not ids:
        return []
    return session.exec(select(Subscriber).where(col(Subscriber.id).in_(ids))).all()


def _subscriptions(session: Session, ids: list[int]) -> Sequence[Subscription]:
    if not ids:
        return []
    return session.exec(
        select(Subscription)
        .where(col(Subscription.subscriber_id).in_(ids))
        .order_by(col(Subscription.newsletter_id))
    ).all()
