"""The tables of one-off sends: announcements, and breaking-news alerts.

Their mail is ordinary outbox rows (``models.Delivery``) under once-keys of their own
("1/a:7", "1/alert:3"); these tables hold what was written and decided about each send.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from digest.clock import utcnow
from digest.columns import _ts


class Announcement(SQLModel, table=True):
    """A one-off mail to a newsletter's readers (or some of them): written, scheduled, sent.

    Its deliveries carry the once-key ``"N/a:ID"``, so a reader gets it at most once, and it
    never takes the place of a digest.
    """

    __tablename__ = "announcements"

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("newsletters.id"), nullable=False)
    )
    subject: str = Field(max_length=998)
    body_markdown: str = Field(default="", sa_type=sa.Text, nullable=False)
    # A template set of the newsletter's folders to render instead of the Markdown body.
    template: str | None = Field(default=None, max_length=100)
    # The audience, narrowing the newsletter's active readers; empty or None: no narrowing.
    topics: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    cadence: str | None = Field(default=None, max_length=16)
    joined_after: datetime | None = _ts()
    joined_before: datetime | None = _ts()
    addresses: list[str] = Field(default_factory=list, sa_type=sa.JSON, nullable=False)
    # draft -> scheduled -> queued (all its mail in the outbox) | cancelled
    status: str = Field(default="draft", max_length=16, index=True)
    send_at: datetime | None = _ts(index=True)  # when it goes (everyone at once)
    local_hour: int | None = Field(default=None)  # or at this hour of each reader's day ...
    local_date: str | None = Field(default=None, max_length=10)  # ... on this date (YYYY-MM-DD)
    body_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bodies.id", ondelete="SET NULL")),
    )
    recipients: int = Field(default=0)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)
    queued_at: datetime | None = _ts()
    cancelled_at: datetime | None = _ts()
    # When its last delivery reached a final state.
    completed_at: datetime | None = _ts()


class Alert(SQLModel, table=True):
    """A post sent as breaking news to a newsletter's readers who opted in, once per newsletter.

    Its deliveries carry the once-key ``"N/alert:ID"``: queued, or ``held`` by the reader's
    interruption budget or quiet hours, in which case the story goes into their next digest.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        sa.UniqueConstraint("newsletter_id", "post_id", name="uq_alerts_newsletter_post"),
    )

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("newsletters.id"), nullable=False)
    )
    post_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False
        )
    )
    source: str = Field(default="editor", max_length=16)  # editor, api, category
    raised_at: datetime = _ts(nullable=False, index=True, default=utcnow)
    expires_at: datetime = _ts(nullable=False, default=utcnow)  # not sent after this
    body_id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("bodies.id", ondelete="SET NULL")),
    )
    queued: int = Field(default=0)
    held_budget: int = Field(default=0)
    held_quiet: int = Field(default=0)
    # When its last delivery reached a final state and ``alert.sent`` was reported.
    completed_at: datetime | None = _ts()
