"""The tables of engagement: clicks (and opens) counted per mail and link, the copies that were
clicked, each reader's clicks under per-reader tracking, and webhooks with their queue.

Clicks arrive in ``click_events`` (a few rows per second at most, written in batches off the
request path) and are folded into the counts by ``clicks.fold``: a burst from one copy is
classified there as a scanner's, then the events are deleted. What stays depends on
``DIGEST_TRACKING``: counts per mail and link, a random tag per clicked copy (aggregate), and
with ``per-reader`` the reader's clicks in ``reader_clicks``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from digest.clock import utcnow
from digest.columns import _ts


class ClickEvent(SQLModel, table=True):
    """One request to ``/r/`` (or an open), waiting to be classified and counted."""

    __tablename__ = "click_events"
    # The fold reads a copy's events together (bursts, earlier clicks of the same copy).
    __table_args__ = (sa.Index("ix_click_events_copy", "mail", "copy_tag"),)

    id: int | None = Field(default=None, primary_key=True)
    mail: str = Field(max_length=16)  # tracking.MailRef as text: "e12", "a3", "l7"
    url_key: str = Field(default="", max_length=32)  # tracking.url_key; "" for an open
    url: str = Field(default="", max_length=2048)
    copy_tag: str | None = Field(default=None, max_length=16)
    subscriber_id: int | None = Field(default=None)  # per-reader tracking only
    at: datetime = _ts(nullable=False, index=True, default=utcnow)
    # "click", "open"; and what the request itself said: a HEAD, a known scanner's agent, an
    # image proxy (Apple Mail Privacy Protection, Gmail's, ...).
    kind: str = Field(default="click", max_length=8)
    machine: bool = Field(default=False)
    proxy: bool = Field(default=False)


class LinkClick(SQLModel, table=True):
    """The clicks on one link of one mail, readers' and machines' apart."""

    __tablename__ = "link_clicks"

    mail: str = Field(primary_key=True, max_length=16)
    url_key: str = Field(primary_key=True, max_length=32)
    url: str = Field(max_length=2048)
    human: int = Field(default=0)
    machine: int = Field(default=0)
    first_at: datetime | None = _ts()
    last_at: datetime | None = _ts()


class MailCopy(SQLModel, table=True):
    """One copy of a mail that was clicked or opened, by its tag: unique clicks and opens.

    The tag is random under aggregate tracking (kept nowhere else, so it names no reader) and
    the subscriber's id in base 36 under per-reader tracking.
    """

    __tablename__ = "mail_copies"

    mail: str = Field(primary_key=True, max_length=16)
    copy_tag: str = Field(primary_key=True, max_length=16)
    human_click_at: datetime | None = _ts()
    machine_click_at: datetime | None = _ts()
    opened_at: datetime | None = _ts()  # an open by the reader's own mail program
    proxy_open_at: datetime | None = _ts()  # an image fetched by a proxy on their behalf


class ReaderClick(SQLModel, table=True):
    """A reader's click under per-reader tracking: what list hygiene reads."""

    __tablename__ = "reader_clicks"
    __table_args__ = (sa.Index("ix_reader_clicks_reader", "subscriber_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
        )
    )
    mail: str = Field(max_length=16, index=True)
    url: str = Field(max_length=2048)
    at: datetime = _ts(nullable=False, default=utcnow)
    machine: bool = Field(default=False)


class TrackingState(SQLModel, table=True):
    """The tracking mode mail has been made under, and since when (one row, id 1).

    The scheduler notes ``DIGEST_TRACKING`` on each tick; when it changes, ``since`` moves.
    List hygiene judges readers only over weeks wholly under per-reader tracking: a reader's
    silence before then says nothing (their clicks were not kept per reader).
    """

    __tablename__ = "tracking_state"

    id: int = Field(default=1, primary_key=True)
    mode: str = Field(max_length=16)
    since: datetime = _ts(nullable=False, default=utcnow)


class Webhook(SQLModel, table=True):
    """A receiver of events: its URL, the events it takes and the secret its POSTs are signed
    with."""

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    events: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    secret: str = Field(max_length=100)
    created_at: datetime = _ts(nullable=False, default=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: the durable queue its POSTs are retried from.

    Written in the same transaction as the change it reports, so an event is never lost and
    never reported for a change that rolled back; ``event_id`` is the same on every retry (and
    for every webhook), for receivers to de-duplicate.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=64)
    body: str = Field(sa_type=sa.Text, nullable=False)  # the exact JSON POSTed every time
    created_at: datetime = _ts(nullable=False, default=utcnow)
    # pending -> delivered | dead (gave up after 24 hours of retries)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _ts(nullable=False, default=utcnow)
    lease_expires_at: datetime | None = _ts()
    last_error: str | None = Field(default=None, max_length=1000)
    delivered_at: datetime | None = _ts()
