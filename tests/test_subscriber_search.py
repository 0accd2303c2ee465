"""The desk's search over the store, on both stores: a prefix of an address or a name finds
exactly the people it should (LIKE's wildcards typed by a person match themselves), filters
narrow it, keyset pages cover everyone once, and on PostgreSQL it reads the prefix indexes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from digest import newsletters, subscriber_search, subscriptions
from digest.db import Database
from digest.models import Subscriber, Subscription
from digest.newsletters import FIRST
from digest.subscriber_search import Filters, escape_like, search

ALPHABET = "abAB%_\\ éÉøØ."


def _store_lower(session: Session, text: str) -> str:
    return str(session.execute(sa.select(sa.func.lower(sa.literal(text)))).scalar_one())


def _emails(page_rows) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.person.email for r in page_rows]


def _all(session: Session, q: str = "", filters: Filters | None = None) -> list[str]:
    return _emails(search(session, q, filters, limit=200).rows)


def test_escape_like_makes_wildcards_literal() -> None:
    assert escape_like("50%_off\\") == "50\\%\\_off\\\\"


people = st.lists(
    st.tuples(
        st.text(ALPHABET.lower().replace("ø", ""), min_size=1, max_size=6),
        st.text(ALPHABET, max_size=8),
    ),
    max_size=12,
    unique_by=lambda p: p[0],
)


# Each example writes to the store: shrinking a failure would take minutes, so the example is
# reported as found.
@settings(
    max_examples=25,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=people, data=st.data())
def test_search_is_exactly_a_prefix_filter(
    db: Database, rows: list[tuple[str, str]], data: st.DataObject
) -> None:
    with db.transaction() as session:
        session.execute(sa.delete(Subscription))
        session.execute(sa.delete(Subscriber))
        for local, name in rows:
            session.add(Subscriber(email=f"{local}@x.example", name=name))
    prefixes = [e[:2] for e, _ in rows] + [n[:2].upper() for _, n in rows if n]
    q = data.draw(
        st.one_of(st.text(ALPHABET, max_size=3), st.sampled_from(prefixes or ["a"])), label="q"
    )
    with db.transaction() as session:
        wanted = q.strip()
        folded = _store_lower(session, wanted)
        expected = sorted(
            f"{local}@x.example"
            for local, name in rows
            if f"{local}@x.example".startswith(wanted.lower())
            or _store_lower(session, name).startswith(folded)
        )
        assert sorted(_all(session, q)) == expected, (q, rows)


def _people(db: Database, n: int) -> list[str]:
    with db.transaction() as session:
        sports = newsletters.add(session, "sports", name="Sports")
        for i in range(n):
            subscriptions.add(
                session,
                f"reader{i:02d}@example.org",
                name=f"Reader {i}",
                cadence="weekly" if i % 3 == 0 else "daily",
                timezone="Europe/Paris" if i % 2 else "UTC",
                confirmed=i % 4 != 0,
            )
            if i % 5 == 0:
                subscriptions.add(
                    session,
                    f"reader{i:02d}@example.org",
                    newsletter_id=int(sports.id or 0),
                    cadence="weekly" if i % 10 == 0 else "daily",
                )
    return sorted(f"reader{i:02d}@example.org" for i in range(n))


def test_keyset_pages_cover_everyone_once_in_order(db: Database) -> None:
    everyone = _people(db, 23)
    with db.transaction() as session:
        seen: list[str] = []
        page = search(session, "", limit=5)
        assert page.prev_before is None
        pages = [page]
        while page.next_after:
            page = search(session, "", after=page.next_after, limit=5)
            pages.append(page)
        seen = [e for p in pages for e in _emails(p.rows)]
        assert seen == everyone
        assert len(pages) == 5
        # Back from the last page: the same pages in reverse.
        back = search(session, "", before=pages[-1].prev_before, limit=5)
        assert _emails(back.rows) == _emails(pages[-2].rows)
        assert back.next_after == pages[-2].rows[-1].person.email


def test_filters_narrow_to_one_subscription(db: Database) -> None:
    _people(db, 20)
    with db.transaction() as session:
        sports = newsletters.get(session, "sports")
        on_sports = _all(session, "", Filters(newsletter_id=sports.id))
        assert on_sports == [f"reader{i:02d}@example.org" for i in range(0, 20, 5)]
        # Everyone on sports is pending there, daily but readers 0 and 10.
        both = Filters(newsletter_id=sports.id, status="pending", cadence="daily")
        assert _all(session, "", both) == ["reader05@example.org", "reader15@example.org"]
        # Active on newsletter 1 and on sports is not "active on sports".
        assert _all(session, "", Filters(newsletter_id=sports.id, status="active")) == []
        weekly_paris = Filters(newsletter_id=FIRST, cadence="weekly", zone="Europe/Paris")
        assert _all(session, "", weekly_paris) == [
            "reader03@example.org",
            "reader09@example.org",
            "reader15@example.org",
        ]
        # Pending on newsletter 1 (every fourth) or on sports (every fifth).
        assert _all(session, "reader1", Filters(status="pending")) == [
            f"reader{i}@example.org" for i in (10, 12, 15, 16)
        ]
        assert _all(session, "READER 1", Filters(zone="UTC")) == [
            f"reader{i}@example.org" for i in (10, 12, 14, 16, 18)
        ]


def test_postgres_reads_the_prefix_indexes(db: Database) -> None:
    """At a million rows the planner must range-scan the prefix indexes, not read the table;
    with planner costs that forbid sequential scans, the plan shows which index it can use."""
    if db.engine.dialect.name != "postgresql":
        return
    _people(db, 30)
    with db.transaction() as session:
        from digest.subscriber_search import statement

        session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        query = statement(session, "Rea%d", Filters(), limit=50)
        # The statement as the search runs it: its values bound as parameters.
        compiled = query.compile(session.get_bind())
        explain = session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        plan = "\n".join(r[0] for r in explain)
        assert "ix_subscribers_email_prefix" in plan, plan
        assert "ix_subscribers_name_prefix" in plan, plan
        assert "Seq Scan" not in plan, plan
        # The typed % is a literal: the index range is of names starting 'rea%d', not 'rea'.
        assert "~>=~ 'rea%d'" in plan, plan


def test_pages_are_the_same_read_in_order_or_through_the_indexes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search reads on in address order first and turns to the prefix indexes when the page
    is not within reach (subscriber_search.WALK): the pages it shows are the same either way,
    names matching far from their addresses included."""
    everyone = _people(db, 23)
    with db.transaction() as session:
        for local in ("aaron", "zed"):
            session.add(Subscriber(email=f"{local}@example.org", name="Reader Far"))
    monkeypatch.setattr(subscriber_search, "WALK", 6)
    walked: list[bool] = []
    real = subscriber_search._walked

    def spy(*args: object) -> object:
        found = real(*args)  # type: ignore[arg-type]
        walked.append(found is not None)
        return found

    monkeypatch.setattr(subscriber_search, "_walked", spy)
    cases = {
        "reader": sorted([*everyone, "aaron@example.org", "zed@example.org"]),
        "reader1": [e for e in everyone if e.startswith("reader1")],
        "READER F": ["aaron@example.org", "zed@example.org"],
    }
    with db.transaction() as session:
        for q, expected in cases.items():
            page = search(session, q, limit=3)
            seen = _emails(page.rows)
            while page.next_after:
                page = search(session, q, after=page.next_after, limit=3)
                seen += _emails(page.rows)
            assert seen == expected, q
        paris = Filters(zone="Europe/Paris")
        assert _all(session, "reader", paris) == [
            f"reader{i:02d}@example.org" for i in range(1, 23, 2)
        ]
    assert True in walked and False in walked
