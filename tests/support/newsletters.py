"""A newsletter with an edition still in the outbox: what archiving must refuse."""

from __future__ import annotations

from datetime import timedelta

from digest import editions, newsletters, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.posts import store


def queue_edition(db: Database, settings: Settings, slug: str) -> int:
    """Subscribe a reader to ``slug``, add a post, make its daily edition; its deliveries wait
    in the outbox (no worker runs). Returns the edition's recipients."""
    with db.transaction() as session:
        newsletter = newsletters.get(session, slug)
        subscriptions.add(
            session, "reader@example.com", newsletter_id=int(newsletter.id or 0), confirmed=True
        )
        store.add_post(session, title="News", url="https://news.example.com/1")
    report = editions.make_edition(
        db,
        settings,
        cadence="daily",
        now=utcnow() + timedelta(minutes=1),
        due_only=False,
        newsletter=slug,
    )
    assert report is not None and report.recipients == 1
    return report.recipients
