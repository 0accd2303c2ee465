"""The list's counts kept as it changes: subscriptions by newsletter and status, per day how
many readers joined and left each newsletter, and active readers by cadence, zone and hour.

Database triggers on ``subscriptions`` and ``subscribers`` keep the tables (migration 0011), so
every way a row changes (a signup, an import, the bounce handler's bulk SQL, an erasure) keeps
them right without code of its own, and the desk's Today page reads a few rows instead of counting a
list of a million readers on every view. Each change appends its differences (+1, -1) as rows,
which ``list_counts`` sums and, now and then, folds into one row per key (``compact``).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from digest.columns import _ts


class SubscriptionCount(SQLModel, table=True):
    """How many subscriptions of one newsletter are in one status."""

    __tablename__ = "subscription_counts"

    # No foreign key: the triggers write here inside any change to subscriptions, and a count
    # must never stop a newsletter's removal (its counts are all zero by then).
    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int
    status: str = Field(max_length=16)
    n: int = Field(default=0)


class SubscriptionDay(SQLModel, table=True):
    """One newsletter's readers on one day (UTC): how many became active, how many left
    (unsubscribed, bounced, complained or erased while active)."""

    __tablename__ = "subscription_days"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(sa_column=sa.Column(sa.Date(), nullable=False, index=True))
    newsletter_id: int
    joined: int = Field(default=0)
    departed: int = Field(default=0)


class SubscriptionSlot(SQLModel, table=True):
    """How many active readers one newsletter has in one cadence, zone and send hour: one
    edition's send, as the Today page lists the next ones."""

    __tablename__ = "subscription_slots"

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int
    cadence: str = Field(max_length=16)
    timezone: str = Field(max_length=64)
    send_hour: int
    n: int = Field(default=0)


class OutboxTally(SQLModel, table=True):
    """The outbox by state as the scheduler last counted it (once a minute): what the desk's
    Today page shows, instead of counting a million deliveries on every view."""

    __tablename__ = "outbox_tally"

    status: str = Field(max_length=16, primary_key=True)
    n: int = Field(default=0)
    counted_at: datetime = _ts(nullable=False)
