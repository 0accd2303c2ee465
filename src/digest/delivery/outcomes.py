"""What passes between the outbox and the worker: claimed rows and outcomes.

Plain data and one pure function, ``outcome_for``, which turns the server's reply to one
message into that row's next state (sent, deferred until when, bounced, failed). The SQL that
claims rows and writes outcomes is ``outbox.py``; the loop that sends is ``worker.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.delivery.replies import Verdict, next_attempt
from digest.delivery.transport import Result
from digest.mail.headers import printable_line
from digest.states import DeliveryKind, DeliveryStatus
from digest.tracking import MailKind, MailRef

#: Why a row past its send-by time was not sent.
LATE_REPLY = "past its send-by time; not sent late"
#: Mail a reader gets as a reader of one newsletter: it carries that newsletter's From,
#: List-Id and one-click unsubscribe, and is not sent once they have left it.
NEWSLETTER_MAIL = frozenset(
    k.value
    for k in (
        DeliveryKind.DIGEST,
        DeliveryKind.WELCOME,
        DeliveryKind.ANNOUNCEMENT,
        DeliveryKind.ALERT,
        DeliveryKind.REPERMISSION,
    )
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased delivery with what a worker needs to build and send it."""

    id: int
    kind: str
    subscriber_id: int | None
    to_email: str
    to_name: str
    body_id: int | None
    message_id: str
    attempts: int
    created_at: datetime
    # The newsletter it is mail of (its From, List-Id, unsubscribe link); None: the site's.
    newsletter_id: int | None = None
    # Not to be sent at or after this (an alert's quiet hours, expiry or local day's end).
    send_by: datetime | None = None
    # The mail its tracked links name (an edition, announcement or alert), and whether its
    # reader asked not to be counted: then the body's plain links go.
    mail: MailRef | None = None
    tracking_opt_out: bool = False


def newsletter_of(once_key: str | None) -> int | None:
    """The newsletter a delivery's once-key names ("2/daily:2026-11-29" is newsletter 2)."""
    head, found, _ = (once_key or "").partition("/")
    return int(head) if found and head.isdigit() else None


_MAIL_KEYS = {
    DeliveryKind.ANNOUNCEMENT.value: ("a:", MailKind.ANNOUNCEMENT),
    DeliveryKind.ALERT.value: ("alert:", MailKind.ALERT),
}


def mail_of(kind: str, edition_id: int | None, once_key: str | None) -> MailRef | None:
    """The mail a delivery is a copy of: a digest's edition, or the announcement or alert its
    once-key names ("1/a:7", "1/alert:3"); None for any other mail."""
    if kind == DeliveryKind.DIGEST.value:
        return MailRef(MailKind.EDITION, edition_id) if edition_id is not None else None
    found = _MAIL_KEYS.get(kind)
    if found is None or not once_key:
        return None
    _, _, tail = once_key.partition("/")
    prefix, mail_kind = found
    number = tail[len(prefix) :] if tail.startswith(prefix) else ""
    return MailRef(mail_kind, int(number)) if number.isdigit() else None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed delivery; ``status`` is a DeliveryStatus value.

    ``next_attempt_at`` is set for deferred rows; ``hard_bounce`` makes the address suppressed.
    """

    delivery_id: int
    status: str
    reply: str
    next_attempt_at: datetime | None = None
    hard_bounce: bool = False
    subscriber_id: int | None = None
    to_email: str = ""


def outcome_for(item: Claimed, result: Result, *, now: datetime, deadline: timedelta) -> Outcome:
    """The row's next state after ``result``: a 4xx defers until the backoff says, unless the
    retry ``deadline`` since the row was queued has passed, when it fails saying so."""
    verdict = result.classify()
    # A server's words end up in `digest status` and logs: one line, no control characters.
    reply = printable_line(result.reply)
    status = DeliveryStatus.FAILED.value
    nxt = None
    if verdict.verdict is Verdict.SENT:
        status = DeliveryStatus.SENT.value
    elif verdict.verdict is Verdict.DEFER:
        nxt = next_attempt(
            created_at=item.created_at, attempts=item.attempts + 1, now=now, deadline=deadline
        )
        if nxt is None:
            reply = f"gave up after {item.attempts + 1} attempts: {reply}"
        else:
            status = DeliveryStatus.DEFERRED.value
    elif verdict.verdict is Verdict.BOUNCE:
        status = DeliveryStatus.BOUNCED.value
    return Outcome(
        item.id,
        status,
        reply,
        next_attempt_at=nxt,
        hard_bounce=verdict.hard,
        subscriber_id=item.subscriber_id,
        to_email=item.to_email,
    )
