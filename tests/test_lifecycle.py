"""The subscription state machine, pair by pair: every (status, event) and where it leads.

The table below is written out by hand, not read from ``lifecycle.py``: changing any
transition there must change a line here too.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.lifecycle import Event, needs_confirmation_mail, next_status
from digest.states import SubscriberStatus

PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
INACTIVE = "inactive"

# status -> {event: next status}, every pair.
TABLE: dict[str, dict[str, str]] = {
    PENDING: {
        "subscribe": PENDING,
        "confirm": ACTIVE,
        "add_confirmed": ACTIVE,
        "unsubscribe": UNSUBSCRIBED,
        "bounce": BOUNCED,
        "complain": COMPLAINED,
        "retire": PENDING,
        "stay": PENDING,
    },
    ACTIVE: {
        "subscribe": ACTIVE,
        "confirm": ACTIVE,
        "add_confirmed": ACTIVE,
        "unsubscribe": UNSUBSCRIBED,
        "bounce": BOUNCED,
        "complain": COMPLAINED,
        "retire": INACTIVE,
        "stay": ACTIVE,
    },
    UNSUBSCRIBED: {
        "subscribe": PENDING,
        "confirm": UNSUBSCRIBED,  # an old confirmation link does not undo leaving
        "add_confirmed": ACTIVE,
        "unsubscribe": UNSUBSCRIBED,
        "bounce": UNSUBSCRIBED,
        "complain": COMPLAINED,
        "retire": UNSUBSCRIBED,
        "stay": UNSUBSCRIBED,
    },
    BOUNCED: {
        "subscribe": PENDING,
        "confirm": BOUNCED,
        "add_confirmed": ACTIVE,
        "unsubscribe": BOUNCED,
        "bounce": BOUNCED,
        "complain": BOUNCED,
        "retire": BOUNCED,
        "stay": BOUNCED,
    },
    COMPLAINED: {
        "subscribe": PENDING,  # only the person asking again, and confirming, brings them back
        "confirm": COMPLAINED,
        "add_confirmed": COMPLAINED,  # an operator can never re-add a complainer
        "unsubscribe": COMPLAINED,
        "bounce": COMPLAINED,
        "complain": COMPLAINED,
        "retire": COMPLAINED,
        "stay": COMPLAINED,
    },
    INACTIVE: {
        "subscribe": PENDING,  # a stranger's request cannot bring them back: it needs confirming
        "confirm": INACTIVE,
        "add_confirmed": ACTIVE,
        "unsubscribe": UNSUBSCRIBED,
        "bounce": BOUNCED,
        "complain": COMPLAINED,
        "retire": INACTIVE,
        "stay": ACTIVE,  # their answer to "still want this?"
    },
}

# Whether a subscribe request sends a confirmation mail, by the address's status (None: new).
CONFIRMATION_MAIL: dict[str | None, bool] = {
    None: True,
    PENDING: True,
    ACTIVE: False,
    UNSUBSCRIBED: True,
    BOUNCED: True,
    COMPLAINED: True,
    INACTIVE: True,
}

PAIRS = [(status, event, after) for status, row in TABLE.items() for event, after in row.items()]
STATUSES = st.sampled_from(list(SubscriberStatus))
EVENTS = st.sampled_from(list(Event))
REVIVING = {Event.CONFIRM, Event.ADD_CONFIRMED, Event.STAY}


def test_the_table_covers_every_status_and_event() -> None:
    assert set(TABLE) == {s.value for s in SubscriberStatus}
    for row in TABLE.values():
        assert set(row) == {e.value for e in Event}
    assert set(CONFIRMATION_MAIL) - {None} == {s.value for s in SubscriberStatus}


@pytest.mark.parametrize(("status", "event", "after"), PAIRS)
def test_each_transition(status: str, event: str, after: str) -> None:
    assert next_status(status, Event(event)) is SubscriberStatus(after)
    assert next_status(SubscriberStatus(status), Event(event)) is SubscriberStatus(after)


@pytest.mark.parametrize(("status", "expected"), list(CONFIRMATION_MAIL.items()))
def test_who_gets_a_confirmation_mail(status: str | None, expected: bool) -> None:
    assert needs_confirmation_mail(status) is expected


def _run(start: SubscriberStatus, events: list[Event]) -> list[SubscriberStatus]:
    """Every status the subscription passes through, the start included."""
    seen = [start]
    for event in events:
        seen.append(next_status(seen[-1], event))
    return seen


@given(STATUSES, st.lists(EVENTS.filter(lambda e: e not in REVIVING), max_size=20))
def test_nothing_but_a_confirmation_makes_a_subscriber_active(
    start: SubscriberStatus, events: list[Event]
) -> None:
    if start is SubscriberStatus.ACTIVE:
        return
    assert SubscriberStatus.ACTIVE not in _run(start, events)


@given(STATUSES, st.lists(EVENTS, max_size=20))
def test_every_way_into_active_is_a_confirmation_or_an_operator_add(
    start: SubscriberStatus, events: list[Event]
) -> None:
    seen = _run(start, events)
    for before, event, after in zip(seen[:-1], events, seen[1:], strict=True):
        if after is SubscriberStatus.ACTIVE and before is not SubscriberStatus.ACTIVE:
            assert (
                (before, event) == (SubscriberStatus.PENDING, Event.CONFIRM)
                or (before, event) == (SubscriberStatus.INACTIVE, Event.STAY)
                or event is Event.ADD_CONFIRMED
            )


@given(STATUSES, st.lists(EVENTS, max_size=20))
def test_unsubscribe_always_leads_out_of_active(
    start: SubscriberStatus, events: list[Event]
) -> None:
    assert _run(start, [*events, Event.UNSUBSCRIBE])[-1] is not SubscriberStatus.ACTIVE


@given(STATUSES, st.lists(EVENTS, max_size=20))
def test_a_complaint_holds_until_the_person_asks_again(
    start: SubscriberStatus, events: list[Event]
) -> None:
    seen = _run(start, [Event.COMPLAIN, *events])
    for status, event in zip(seen[1:-1], events, strict=True):
        if status is SubscriberStatus.COMPLAINED and event is not Event.SUBSCRIBE:
            assert next_status(status, event) is SubscriberStatus.COMPLAINED


@given(STATUSES, EVENTS)
def test_the_same_event_twice_changes_nothing_more(start: SubscriberStatus, event: Event) -> None:
    once = next_status(start, event)
    assert next_status(once, event) is once
