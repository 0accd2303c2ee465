"""What a newsletter comes to once its unset fields follow the settings (pure).

Newsletter 1 is made from the settings and leaves most fields unset, so changing
``DIGEST_FROM`` or ``DIGEST_FEATURED_CATEGORIES`` still changes it, as it did before there were
several newsletters. Every part of an edition (planning, rendering, the message's headers)
reads a newsletter through this one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from digest.config import Settings
from digest.models import Newsletter
from digest.quiet_hours import NIGHT, QuietHours
from digest.states import Cadence

FIRST = 1  # ``newsletters.FIRST``: the newsletter made from the settings


@dataclass(frozen=True)
class NewsletterConfig:
    """A newsletter's effective settings."""

    id: int
    slug: str
    name: str
    description: str
    cadences: tuple[str, ...]
    default_cadence: str
    send_hour: int
    weekly_day: str
    topics: tuple[str, ...]  # empty: every post
    featured_categories: tuple[str, ...]
    templates_dir: str | None
    sender: str  # the From header value, "Name <address>"
    reply_to: str | None
    list_id: str  # "digest.example.com"
    public: bool
    archived: bool
    # The breaking-news lane: offered at all, at most so many a reader's local day, never in
    # their quiet hours, never later than ``alert_expiry`` after being raised.
    alerts: bool = True
    alert_budget: int = 2
    quiet_hours: QuietHours = NIGHT
    alert_expiry: timedelta = timedelta(hours=3)
    alert_categories: tuple[str, ...] = ()
    # UTM parameters on the links to posts in its mail (``compose/utm.py``).
    utm: bool = True

    @property
    def key_prefix(self) -> str:
        """What the newsletter's edition keys and once-keys start with: ``"1/"``."""
        return f"{self.id}/"

    def once_key(self, what: str) -> str:
        """The once-key of ``what`` in this newsletter ("1/daily:2026-11-29", "1/welcome")."""
        return f"{self.id}/{what}"


def configure(newsletter: Newsletter, settings: Settings) -> NewsletterConfig:
    """The newsletter as it is sent: its own fields, the settings where it has none."""
    cadences = tuple(newsletter.cadences or [c.value for c in Cadence])
    return NewsletterConfig(
        id=int(newsletter.id or 0),
        slug=newsletter.slug,
        name=newsletter.name,
        description=newsletter.description or "",
        cadences=cadences,
        default_cadence=newsletter.default_cadence
        if newsletter.default_cadence in cadences
        else cadences[0],
        send_hour=settings.send_hour if newsletter.send_hour is None else newsletter.send_hour,
        weekly_day=newsletter.weekly_day or settings.weekly_day,
        topics=tuple(newsletter.topics or ()),
        featured_categories=tuple(
            settings.featured_categories
            if newsletter.featured_categories is None
            else newsletter.featured_categories
        ),
        templates_dir=newsletter.templates_dir
        or (str(settings.templates_dir) if settings.templates_dir else None),
        sender=newsletter.sender or settings.from_,
        reply_to=newsletter.reply_to,
        # Each newsletter is its own list: mail clients and filters tell them apart by List-Id.
        list_id=newsletter.list_id
        or (
            settings.list_identifier
            if newsletter.id == FIRST
            else f"{newsletter.slug}.{settings.list_identifier}"
        ),
        public=bool(newsletter.public),
        archived=newsletter.archived_at is not None,
        alerts=bool(newsletter.alerts),
        alert_budget=settings.alert_budget
        if newsletter.alert_budget is None
        else newsletter.alert_budget,
        quiet_hours=QuietHours.parse(newsletter.quiet_hours or settings.quiet_hours),
        alert_expiry=timedelta(
            hours=newsletter.alert_expiry_hours
            if newsletter.alert_expiry_hours is not None
            else settings.alert_expiry_hours
        ),
        alert_categories=tuple(
            settings.alert_categories
            if newsletter.alert_categories is None
            else newsletter.alert_categories
        ),
        utm=newsletter.utm is not False,
    )
