"""A reader to click tracked links in the click tests: subscribed to the first newsletter,
with edition 1 of it (the mail ``e1`` their clicks are on)."""

from __future__ import annotations

from digest.db import Database
from digest.models import Edition, Subscriber, Subscription


def add_reader(db: Database, *, opted_out: bool = False) -> int:
    """The new reader's id; ``opted_out``: they asked not to have their clicks counted."""
    with db.transaction() as session:
        subscriber = Subscriber(email="reader@example.com", tracking_opt_out=opted_out)
        session.add(subscriber)
        session.flush()
        session.add(Subscription(subscriber_id=subscriber.id, newsletter_id=1, status="active"))
        session.add(Edition(key="1/daily:2026-12-02T07Z", cadence="daily", newsletter_id=1))
        assert subscriber.id is not None
        return subscriber.id
