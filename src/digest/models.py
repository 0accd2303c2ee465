"""The tables of the store: newsletters, subscribers and their subscriptions, posts, feeds,
editions, bodies, deliveries, suppressions.

Alembic's ``env.py`` reads ``SQLModel.metadata`` from here; every change to a table goes with a
migration under ``alembic/versions``. Times are stored as timezone-aware UTC (``UTCDateTime``),
so SQLite and PostgreSQL hand back the same values.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from digest.clock import utcnow
from digest.columns import UTCDateTime, _ts
from digest.states import Cadence, DeliveryKind, DeliveryStatus, SubscriberStatus

MAX_REPLY = 1000  # characters of a server's reply kept on a delivery


class Newsletter(SQLModel, table=True):
    """One list a reader can subscribe to: its name, what it draws from, how it is sent.

    Newsletter 1 exists as soon as the store does, made from the settings; an unset field
    (None) follows the settings, so a newsletter made from them keeps following them.
    """

    __tablename__ = "newsletters"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    cadences: list[str] = Field(default_factory=lambda: ["daily", "weekly"], sa_type=sa.JSON)
    default_cadence: str = Field(default=Cadence.DAILY.value, max_length=16)
    send_hour: int | None = Field(default=None)
    weekly_day: str | None = Field(default=None, max_length=16)
    # The post categories it draws from; empty: every post.
    topics: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    # Categories whose posts it features; None: DIGEST_FEATURED_CATEGORIES.
    featured_categories: list[str] | None = Field(default=None, sa_type=sa.JSON)
    templates_dir: str | None = Field(default=None, max_length=1000)
    sender: str | None = Field(default=None, max_length=500)  # "Name <address>"; None: DIGEST_FROM
    reply_to: str | None = Field(default=None, max_length=320)
    list_id: str | None = Field(default=None, max_length=200)
    public: bool = Field(default=True)
    position: int = Field(default=0)
    # Slugs it had before: links and forms naming one keep working.
    former_slugs: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    archived_at: datetime | None = _ts()
    # The breaking-news lane: whether readers may opt in, and its protections; None follows
    # DIGEST_ALERT_BUDGET, DIGEST_QUIET_HOURS, DIGEST_ALERT_EXPIRY_HOURS, DIGEST_ALERT_CATEGORIES.
    alerts: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    alert_budget: int | None = Field(default=None)
    quiet_hours: str | None = Field(default=None, max_length=16)
    alert_expiry_hours: float | None = Field(default=None)
    alert_categories: list[str] | None = Field(default=None, sa_type=sa.JSON)
    # UTM parameters on post links (utm_source = the slug, utm_medium=email, utm_campaign =
    # the edition), for the site's analytics.
    utm: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # List hygiene (off while None): readers sent the last ``hygiene_digests`` digests over
    # ``hygiene_weeks`` weeks without a human click get "still want this?", and are retired
    # (status inactive) when they do not answer within ``hygiene_grace_days``.
    hygiene_digests: int | None = Field(default=None)
    hygiene_weeks: int | None = Field(default=None)
    hygiene_grace_days: int | None = Field(default=None)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class Subscriber(SQLModel, table=True):
    """A person, keyed by their normalised address: what their subscriptions share."""

    __tablename__ = "subscribers"
    __table_args__ = (
        # Editions pick their recipients slot by slot (zone, local hour).
        sa.Index("ix_subscribers_zone_hour", "timezone", "send_hour"),
        # The desk searches by the start of an address or a name (LIKE 'prefix%'); PostgreSQL
        # uses a btree for that only with the pattern operator class, which migration 0010
        # gives these there (named here without it: naming it would load the PostgreSQL
        # dialect into every command, SQLite ones included).
        sa.Index("ix_subscribers_email_prefix", "email"),
        sa.Index("ix_subscribers_name_prefix", sa.text("lower(name)")),
        # Ids are never reused, so an erased person's links never name a newer subscriber
        # (SQLite would otherwise give the next one the highest id again; migration 0006).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    send_hour: int = Field(default=7)
    # Asked in the preference centre not to have their clicks or opens counted, in any mode:
    # their mail links straight to the site.
    tracking_opt_out: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class Subscription(SQLModel, table=True):
    """One reader on one newsletter: its status, cadence, topics and consent record."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("subscriber_id", "newsletter_id", name="uq_subscriptions_reader"),
        # Editions pick their recipients by newsletter, cadence and status.
        sa.Index("ix_subscriptions_slot", "newsletter_id", "cadence", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
        )
    )
    newsletter_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("newsletters.id"), nullable=False)
    )
    status: str = Field(default=SubscriberStatus.PENDING.value, max_length=16, index=True)
    cadence: str = Field(default=Cadence.DAILY.value, max_length=16)
    topics: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    # The consent record: when, from where, through which form, under which wording.
    consent_at: datetime | None = _ts()
    consent_ip: str | None = Field(default=None, max_length=64)
    consent_user_agent: str | None = Field(default=None, max_length=512)
    consent_source: str | None = Field(default=None, max_length=200)
    consent_wording: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)
    confirmed_at: datetime | None = _ts()
    unsubscribed_at: datetime | None = _ts()
    # End of the window the last digest covered; the next one starts here.
    last_digest_at: datetime | None = _ts()
    # When it last became active (confirmed, added, imported, came back); NULL for rows made
    # before it was kept. The scheduler sends a period's digest only to readers active by its
    # send hour, so someone who joins after it waits for the next one.
    active_since: datetime | None = _ts()
    # Opted in to the newsletter's breaking-news alerts (off until they ask).
    alerts: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # Per-reader tracking: their last human click on this newsletter's mail (list hygiene).
    last_click_at: datetime | None = _ts()
    # List hygiene sent them "still want this?" at this time; cleared when they answer.
    repermission_sent_at: datetime | None = _ts()


class Suppression(SQLModel, table=True):
    """An address that bulk imports must not add back: erased, hard-bounced or complained.

    Only a one-way hash of the normalised address is kept, so an erased person leaves no
    readable trace.
    """

    __tablename__ = "suppressions"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, unique=True, index=True)
    reason: str = Field(max_length=32)
    created_at: datetime = _ts(nullable=False, default=utcnow)


class Feed(SQLModel, table=True):
    """A source of posts polled on schedule, with its conditional-GET state and health."""

    __tablename__ = "feeds"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048, unique=True)
    title: str = Field(default="", max_length=500)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    last_polled_at: datetime | None = _ts()
    last_ok_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, max_length=1000)
    failing_since: datetime | None = _ts()


class Post(SQLModel, table=True):
    """One story from the site: what a digest lists under Don't Miss or Latest Posts."""

    __tablename__ = "posts"

    id: int | None = Field(default=None, primary_key=True)
    # Stable identity: the feed's guid, "wp:<site>/<id>", or else the canonical link.
    guid: str = Field(max_length=2048, unique=True)
    source: str = Field(default="manual", max_length=2048)
    title: str = Field(max_length=1000)
    link: str = Field(max_length=2048)
    summary: str = Field(default="", sa_type=sa.Text, nullable=False)
    content_html: str = Field(default="", sa_type=sa.Text, nullable=False)
    author: str = Field(default="", max_length=300)
    categories: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    image_url: str | None = Field(default=None, max_length=2048)
    image_alt: str = Field(default="", max_length=500)
    published_at: datetime = _ts(nullable=False, index=True, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)
    first_seen_at: datetime = _ts(nullable=False, index=True, default=utcnow)
    # Featured by the source (a sticky WordPress post).
    sticky: bool = Field(default=False)
    # The editor's word, which wins over the source: None follows the source and categories.
    editor_featured: bool | None = Field(default=None)
    featured_until: datetime | None = _ts()
    # Its place in the "Don't Miss" strip an editor set (1 first); None: after the placed
    # ones, newest published first.
    strip_position: int | None = Field(default=None)
    # The newsletters the editor featured it in; empty: every one.
    featured_in: list[int] = Field(
        default_factory=list,
        sa_type=sa.JSON,
        nullable=False,
        sa_column_kwargs={"server_default": "[]"},
    )


class Edition(SQLModel, table=True):
    """One run of the composer for one cadence and one time slot; the archive lists these."""

    __tablename__ = "editions"

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key: SQLite adds one to an existing table only by rebuilding it, which would
    # cascade into every delivery; newsletters are archived, never deleted.
    newsletter_id: int = Field(
        default=1,
        sa_column=sa.Column(sa.Integer, nullable=False, server_default="1", index=True),
    )
    # Idempotency key, e.g. "1/daily:2026-11-29T07Z" (newsletter 1); making the same edition
    # twice adds nothing.
    key: str = Field(max_length=100, unique=True)
    cadence: str = Field(max_length=16)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    # The moment the edition was composed for (the slot), and the send-by deadline of its mail.
    edition_at: datetime = _ts(nullable=False, index=True, default=utcnow)
    send_by: datetime | None = _ts()
    is_test: bool = Field(default=False)
    subject: str = Field(default="", max_length=500)
    # The web version: the shared body without personal links, for /archive.
    web_html: str = Field(default="", sa_type=sa.Text, nullable=False)
    post_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    recipients: int = Field(default=0)
    skipped: int = Field(default=0)
    # When its last delivery reached a final state and ``edition.sent`` was reported.
    completed_at: datetime | None = _ts()


class Body(SQLModel, table=True):
    """A rendered message body shared by every delivery that carries the same posts.

    Personal parts (address, unsubscribe and preference links) are placeholders filled at
    send time, so one render serves many subscribers.
    """

    __tablename__ = "bodies"

    id: int | None = Field(default=None, primary_key=True)
    edition_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), index=True
        ),
    )
    # Hash of what makes the body unique within the edition (post ids, template version).
    digest_key: str = Field(default="", max_length=64)
    subject: str = Field(default="", max_length=998)
    text: str = Field(default="", sa_type=sa.Text, nullable=False)
    html: str = Field(default="", sa_type=sa.Text, nullable=False)
    # The same two parts with every outside link through ``/r/`` (``tracking.py``) and a
    # ``%%TRACK%%`` placeholder for each copy's part; None when links are not tracked. Readers
    # who opted out, and every reader with DIGEST_TRACKING=off, get ``text`` and ``html``.
    tracked_text: str | None = Field(default=None, sa_type=sa.Text)
    tracked_html: str | None = Field(default=None, sa_type=sa.Text)
    post_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    created_at: datetime = _ts(nullable=False, default=utcnow)


class Delivery(SQLModel, table=True):
    """One row of the outbox: one message to one address, and everything that happened to it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # One digest per subscriber per edition, and at most one per subscriber per newsletter
        # and period (a local day or an ISO week), whatever runs twice.
        sa.UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
        sa.UniqueConstraint("subscriber_id", "period_key", name="uq_deliveries_subscriber_period"),
        sa.Index("ix_deliveries_claim", "status", "next_attempt_at"),
        # A bounce or complaint quotes the Message-ID of the mail it is about. A digest's is
        # found through (edition, subscriber), which it encodes; only the others need this
        # index, and a million-row edition does not pay for it. The store's index is partial,
        # WHERE kind != 'digest' on both stores (migration 0002; tests/test_migrations.py
        # holds it so). Its where clause is not repeated here: SQLAlchemy names it per dialect
        # (postgresql_where=), which loads its whole PostgreSQL dialect into every command,
        # SQLite's included, and Alembic does not compare where clauses anyway.
        sa.Index("ix_deliveries_message_id", "message_id"),
        # The latest failures (deferred, bounced, failed) newest first, for the desk and
        # ``digest status``: partial, WHERE status IN those three (migration 0013), so a page
        # reads ten index entries, not every failure ever recorded.
        sa.Index("ix_deliveries_problems", "updated_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default=DeliveryKind.DIGEST.value, max_length=16)
    edition_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE")),
    )
    subscriber_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
        ),
    )
    body_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bodies.id", ondelete="CASCADE"), index=True),
    )
    # What this row is the one of for its subscriber: "1/daily:2026-11-29" or "1/weekly:2026-W48"
    # (newsletter 1's digest of that local day or ISO week), "2/welcome"; None for mail that
    # may repeat (confirmations, test copies).
    period_key: str | None = Field(default=None, max_length=32)
    to_email: str = Field(max_length=320)
    status: str = Field(default=DeliveryStatus.QUEUED.value, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _ts(nullable=False, default=utcnow)
    send_by: datetime | None = _ts()
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _ts()
    last_reply: str | None = Field(default=None, max_length=MAX_REPLY)
    message_id: str = Field(max_length=255)
    created_at: datetime = _ts(nullable=False, index=True, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)
    sent_at: datetime | None = _ts()


class RateHit(SQLModel, table=True):
    """Requests counted per client key and window, shared by every web process (PostgreSQL)."""

    __tablename__ = "rate_hits"

    key: str = Field(primary_key=True, max_length=64)  # "subscribe:198.51.100.7" and kin
    slot: int = Field(primary_key=True)  # the window's number: epoch seconds // its length
    hits: int = Field(default=0)


# The campaign tables live beside these; importing them here registers them in the metadata
# that Alembic and the tests read from this module.
from digest.models_campaigns import Alert, Announcement  # noqa: E402
from digest.models_counts import (  # noqa: E402
    OutboxTally,
    SubscriptionCount,
    SubscriptionDay,
    SubscriptionSlot,
)
from digest.models_desk import AuditEntry, DeskPolicy, DeskSession, DeskUser  # noqa: E402
from digest.models_engagement import (  # noqa: E402
    ClickEvent,
    LinkClick,
    MailCopy,
    ReaderClick,
    TrackingState,
    Webhook,
    WebhookDelivery,
)

__all__ = [
    "MAX_REPLY",
    "Alert",
    "Announcement",
    "AuditEntry",
    "Body",
    "ClickEvent",
    "Delivery",
    "DeskPolicy",
    "DeskSession",
    "DeskUser",
    "Edition",
    "Feed",
    "LinkClick",
    "MailCopy",
    "Newsletter",
    "OutboxTally",
    "Post",
    "RateHit",
    "ReaderClick",
    "Subscriber",
    "Subscription",
    "SubscriptionCount",
    "SubscriptionDay",
    "SubscriptionSlot",
    "Suppression",
    "TrackingState",
    "UTCDateTime",
    "Webhook",
    "WebhookDelivery",
]
