"""The list's counts kept by the store's triggers (migration 0011) agree with the rows, on both
stores, whatever path changed them: the library, bulk SQL, erasure's deletes."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from digest import list_counts, newsletters, subscriptions
from digest import subscribers as store
from digest.clock import utcnow
from digest.db import Database, alembic_config
from digest.errors import DigestError
from digest.models import Subscriber, Subscription
from digest.states import SubscriberStatus

U = Subscription.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
PEOPLE = 6

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, PEOPLE - 1), st.booleans(), st.booleans()),
        st.tuples(st.just("confirm"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("unsubscribe"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("bounce"), st.integers(0, PEOPLE - 1), st.booleans()),
        st.tuples(st.just("sql"), st.sampled_from(STATUSES), st.sampled_from(STATUSES)),
        st.tuples(st.just("delete"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("erase"), st.integers(0, PEOPLE - 1)),
        st.tuples(
            st.just("move"),
            st.integers(0, PEOPLE - 1),
            st.sampled_from(["UTC", "Europe/Berlin", "Asia/Kolkata"]),
            st.integers(6, 8),
        ),
        st.tuples(
            st.just("cadence"), st.integers(0, PEOPLE - 1), st.sampled_from(["daily", "weekly"])
        ),
        st.tuples(st.just("drop"), st.integers(0, PEOPLE - 1)),
        st.tuples(st.just("compact")),
    ),
    max_size=12,
)


def _apply(s, op: tuple, second: int) -> None:  # type: ignore[no-untyped-def]
    kind, *args = op
    email = f"p{args[0]}@example.com" if kind not in ("sql", "compact") else ""
    person = store.find(s, email) if email else None
    if kind == "add":
        subscriptions.add(s, email, newsletter_id=second if args[1] else 1, confirmed=args[2])
    elif kind == "confirm" and person is not None:
        subscriptions.confirm(s, person)
    elif kind == "unsubscribe" and person is not None:
        subscriptions.unsubscribe(s, person, None)
    elif kind == "bounce" and person is not None:
        subscriptions.mark_bounced(s, person, complaint=args[1])
    elif kind == "sql":
        # The bounce handler's and an operator's way: one statement over many rows.
        s.execute(
            sa.update(U).where(U.c.status == args[0]).values(status=args[1], updated_at=utcnow())
        )
    elif kind == "delete" and person is not None:
        s.execute(sa.delete(U).where(U.c.subscriber_id == person.id))
    elif kind == "erase" and person is not None:
        store.erase(s, email)
    elif kind == "move" and person is not None:  # a zone or hour changed in plain SQL
        s.execute(
            sa.update(S).where(S.c.id == person.id).values(timezone=args[1], send_hour=args[2])
        )
    elif kind == "cadence" and person is not None:
        s.execute(sa.update(U).where(U.c.subscriber_id == person.id).values(cadence=args[1]))
    elif kind == "compact":  # the scheduler's housekeeping, amid the changes
        list_counts.compact(s)
    elif kind == "drop" and person is not None:  # the subscriber's row alone: the rest cascades
        s.execute(sa.delete(S).where(S.c.id == person.id))


def _counted(db: Database) -> dict[tuple[int, str], int]:
    with db.transaction() as s:
        rows = s.execute(
            sa.select(U.c.newsletter_id, U.c.status, sa.func.count()).group_by(
                U.c.newsletter_id, U.c.status
            )
        )
        return {(nl, status): n for nl, status, n in rows}


def _slots_counted(db: Database) -> dict[tuple[int, str, str, int], int]:
    with db.transaction() as s:
        key = (U.c.newsletter_id, U.c.cadence, S.c.timezone, S.c.send_hour)
        rows = s.execute(
            sa.select(*key, sa.func.count())
            .select_from(U.join(S, S.c.id == U.c.subscriber_id))
            .where(U.c.status == "active")
            .group_by(*key)
        )
        return {tuple(row[:4]): row[4] for row in rows}


def _slots_kept(db: Database) -> dict[tuple[int, str, str, int], int]:
    with db.transaction() as s:
        return {
            (x.newsletter_id, x.cadence, x.timezone, x.send_hour): x.readers
            for x in list_counts.slots(s)
        }


def _kept(db: Database) -> dict[tuple[int, str], int]:
    with db.transaction() as s:
        found = {}
        for nl in list_counts.by_newsletter(s):
            found |= {(nl.id, status): n for status, n in nl.counts.items() if n}
        return found


# Each example changes a real store; shrinking would replay them for minutes.
@settings(
    max_examples=15,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=ops, together=st.booleans())
def test_kept_counts_equal_the_rows_after_any_changes(
    db: Database, steps: list[tuple], together: bool
) -> None:
    # The counts hold across examples too: the store is not emptied between them.
    with db.transaction() as s:
        second = newsletters.find(s, "second") or newsletters.add(s, "second", name="Second")
        second_id = int(second.id or 0)
    if together:  # many changes in one transaction, as an import makes them
        try:
            with db.transaction() as s:
                for op in steps:
                    _apply(s, op, second_id)
        except DigestError:
            pass  # rolled back as a whole: the counts must be as they were
    else:
        for op in steps:
            try:
                with db.transaction() as s:
                    _apply(s, op, second_id)
            except DigestError:
                pass
    assert _kept(db) == _counted(db)
    assert _slots_kept(db) == _slots_counted(db)
    with db.transaction() as s:
        totals = list_counts.counts_by_status(s)
    assert totals == {
        status: sum(n for (_, st_), n in _counted(db).items() if st_ == status)
        for status in [s.value for s in SubscriberStatus]
    }


def test_joining_and_leaving_are_counted_on_their_day(db: Database) -> None:
    with db.transaction() as s:
        for name in ("ann", "bob", "cy"):
            subscriptions.add(s, f"{name}@example.com")
    with db.transaction() as s:
        for name in ("ann", "bob", "cy"):
            subscriptions.confirm(s, store.get(s, f"{name}@example.com"))
    with db.transaction() as s:
        subscriptions.unsubscribe(s, store.get(s, "ann@example.com"))
        subscriptions.mark_bounced(s, store.get(s, "bob@example.com"))
        subscriptions.add(s, "dee@example.com", confirmed=True)  # an operator's add counts too
    with db.transaction() as s:
        store.erase(s, "cy@example.com")
    today = utcnow().date()
    with db.transaction() as s:
        days = list_counts.daily(s, 30, today=today)
        assert len(days) == 30 and days[0].day == today - timedelta(days=29)
        assert (days[-1].joined, days[-1].left) == (4, 3)
        assert sum(d.joined for d in days[:-1]) == 0
        assert list_counts.counts_by_status(s) == {
            "pending": 0,
            "active": 1,
            "unsubscribed": 1,
            "bounced": 1,
            "complained": 0,
            "inactive": 0,
        }
        # The existing counts read the kept ones now: the same answer.
        assert store.count_by_status(s) == list_counts.counts_by_status(s)


def _at(db: Database, revision: str, direction: str) -> None:
    cfg = alembic_config(db.url)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)
        conn.commit()


def _triggers(db: Database) -> set[str]:
    query = (
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        " UNION SELECT proname FROM pg_proc WHERE proname LIKE 'subscri%%_counted_%%'"
        if db.engine.dialect.name == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    )
    with db.engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql(query)}


def test_0011_counts_the_rows_already_there_and_goes_down_clean(db: Database) -> None:
    with db.transaction() as s:
        for name in ("ann", "bob", "cy"):
            subscriptions.add(s, f"{name}@example.com", confirmed=name != "cy")
        subscriptions.unsubscribe(s, store.get(s, "bob@example.com"))
    assert _triggers(db) >= {"subscriptions_counted_insert", "subscribers_counted_delete"}
    _at(db, "0010", "downgrade")
    assert _triggers(db) == set()
    # Rows written while nothing counted them: the upgrade counts them all. Plain SQL: the
    # models already know the columns of later migrations.
    now = utcnow()
    with db.engine.begin() as conn:
        sid = conn.execute(
            sa.text(
                "INSERT INTO subscribers (email, name, timezone, send_hour, created_at,"
                " updated_at) VALUES ('dee@example.com', '', 'UTC', 7, :t, :t) RETURNING id"
            ),
            {"t": now},
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO subscriptions (subscriber_id, newsletter_id, status, cadence,"
                " topics, created_at, updated_at, confirmed_at, active_since, alerts)"
                " VALUES (:s, 1, 'active', 'daily', '[]', :t, :t, :t, :t, false)"
            ),
            {"s": sid, "t": now},
        )
    _at(db, "head", "upgrade")
    assert (
        _kept(db) == _counted(db) == {(1, "active"): 2, (1, "pending"): 1, (1, "unsubscribed"): 1}
    )
    with db.transaction() as s:
        (day,) = list_counts.daily(s, 1)
    # Joined: ann and dee, active now; bob joined then left (only his leaving is kept).
    assert (day.joined, day.left) == (2, 1)


def test_retiring_counts_as_leaving_and_coming_back_as_joining(db: Database) -> None:
    with db.transaction() as s:
        subscriptions.add(s, "ann@example.com", confirmed=True)
    with db.transaction() as s:
        sub = s.exec(sa.select(Subscription)).scalars().one()
        asked = utcnow()  # list hygiene asked them, unanswered
        s.execute(sa.update(Subscription.__table__).values(repermission_sent_at=asked))  # type: ignore[attr-defined]
        assert subscriptions.retire(s, int(sub.id or 0), asked)
    today = utcnow().date()
    with db.transaction() as s:
        (day,) = list_counts.daily(s, 1, today=today)
        assert (day.joined, day.left) == (1, 1)
        assert list_counts.counts_by_status(s)["inactive"] == 1
    with db.transaction() as s:
        sub = s.exec(sa.select(Subscription)).scalars().one()
        assert subscriptions.stay(s, sub)
    with db.transaction() as s:
        (day,) = list_counts.daily(s, 1, today=today)
        assert (day.joined, day.left) == (2, 1)
        assert list_counts.counts_by_status(s)["active"] == 1
    assert _kept(db) == _counted(db)
