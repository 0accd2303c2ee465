"""The named states and kinds of the domain: a subscriber's status, a cadence, an outbox row's
state and kind.

Plain enums with no database code, so the pure modules (``lifecycle``, ``periods``,
``delivery/outcomes``) can use them without importing SQLModel; ``models.py`` stores their
values.
"""

from __future__ import annotations

from enum import StrEnum


class SubscriberStatus(StrEnum):
    """Where a subscriber is in their life cycle."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    # Retired by list hygiene: received many digests without reading any and did not answer
    # "still want this?". Mail stops; the record stays, and they can come back.
    INACTIVE = "inactive"


class Cadence(StrEnum):
    """How often a subscriber gets a digest."""

    DAILY = "daily"
    WEEKLY = "weekly"


class DeliveryStatus(StrEnum):
    """The states of one row of the outbox."""

    QUEUED = "queued"
    SENDING = "sending"  # leased by a worker
    SENT = "sent"
    DEFERRED = "deferred"  # temporary failure, retried at next_attempt_at
    FAILED = "failed"  # gave up (deadline passed or permanent local error)
    BOUNCED = "bounced"  # the server refused it with a 5xx
    CANCELLED = "cancelled"  # the subscriber left before it went out
    SKIPPED = "skipped"  # nothing new for this subscriber this period, or past its send-by time
    # An alert that the reader's interruption budget or quiet hours held back: never sent,
    # its story waits for their next digest ...
    HELD = "held"
    # ... which took it (or an alert that could not go out in time): the story went there.
    FOLDED = "folded"


class DeliveryKind(StrEnum):
    """What an outbox row carries."""

    DIGEST = "digest"
    CONFIRM = "confirm"
    TEST = "test"
    WELCOME = "welcome"  # once per reader and newsletter, when they confirm
    ANNOUNCEMENT = "announcement"  # a one-off campaign to a newsletter's readers
    ALERT = "alert"  # a breaking-news alert to the readers who opted in
    REPERMISSION = "repermission"  # list hygiene's "still want this?", once per question
