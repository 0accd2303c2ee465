"""``digest demo``'s world: a store and a file outbox of its own under ``DIGEST_VAR_DIR/demo``,
the shipped sample feed, a few sample subscribers, and the editions made for them.

The demo never touches the configured store unless told to, and then only one with no
subscribers but its samples: a first look must not mail the day's digest to real readers.
Running it again changes nothing that is already there and sends nobody a second digest for
the same period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from digest import editions, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.errors import SettingsError
from digest.models import Subscriber
from digest.posts.poll import import_file
from digest.posts.samples import load_sample_feed
from digest.settings_report import store_location

SAMPLE_SUBSCRIBERS = (
    ("ana@example.com", "Ana Costa", "daily", "", "Europe/Lisbon"),
    ("kenji@example.com", "Kenji Sato", "daily", "Business,Technology", "Asia/Tokyo"),
    ("maria@example.com", "María López", "weekly", "World,Politics", "America/New_York"),
    ("sam@example.com", "Sam Taylor", "daily", "Sports", "Australia/Sydney"),
)
S = Subscriber.__table__  # type: ignore[attr-defined]


@dataclass
class DemoRun:
    """What one run of the demo did."""

    posts: str  # the sample feed's import, summed up
    editions: list[editions.EditionReport] = field(default_factory=list)

    @property
    def recipients(self) -> int:
        """Digests queued by this run."""
        return sum(report.recipients for report in self.editions)


def demo_folder(settings: Settings) -> Path:
    """Where the demo keeps its own store, outbox and sample feed."""
    return settings.var_dir / "demo"


def demo_settings(settings: Settings) -> Settings:
    """``settings`` with the demo's own SQLite store and file outbox in place of the
    configured ones, whatever those are (a real SMTP relay included)."""
    folder = demo_folder(settings)
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{folder / 'digest.db'}",
            "smtp_url": f"file:{folder / 'outbox'}",
        }
    )


def check_store_for_demo(db: Database) -> None:
    """SettingsError unless every subscriber in the store is one of the demo's samples."""
    samples = [email for email, *_ in SAMPLE_SUBSCRIBERS]
    with db.transaction() as session:
        others = session.execute(
            sa.select(sa.func.count()).select_from(S).where(S.c.email.not_in(samples))
        ).scalar_one()
    if others:
        raise SettingsError(
            f"DIGEST_DATABASE_URL: the store at {store_location(db.url)} has {others} "
            "subscriber(s) of its own; the demo would mail them. Run `digest demo` without "
            "--configured-store to use a store of its own"
        )


def run_demo(db: Database, settings: Settings, folder: Path) -> DemoRun:
    """Import the sample feed, add the sample subscribers, make the daily and weekly editions
    now for whoever has not had this period's digest; nothing is delivered here."""
    feed = folder / "sample_feed.xml"
    feed.parent.mkdir(parents=True, exist_ok=True)
    feed.write_bytes(load_sample_feed(utcnow()))
    result = DemoRun(posts=import_file(db, settings, feed).summary())
    with db.transaction() as session:
        for email, name, cadence, topics, zone in SAMPLE_SUBSCRIBERS:
            subscriptions.add(
                session,
                email,
                name=name,
                cadence=cadence,
                topics=topics,
                timezone=zone,
                confirmed=True,
            )
    # The edition's time comes after the import: a post first seen later than the edition
    # belongs to the next one.
    now: datetime = utcnow()
    for cadence in ("daily", "weekly"):
        report = editions.make_edition(db, settings, cadence=cadence, now=now, due_only=False)
        if report is not None:
            result.editions.append(report)
    return result
