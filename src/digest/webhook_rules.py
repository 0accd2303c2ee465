"""What webhooks report and how their POSTs are retried: the event names, the event of each
subscription status, the body of an event, the backoff schedule that ends in ``dead``, when an
edition's slot can take no more readers, and a webhook URL with its credentials left out.

Pure: ``webhook_events`` writes what these say into the queue, ``webhook_sender`` follows the
schedule.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from digest.states import SubscriberStatus

PENDING = "subscriber.pending"
CONFIRMED = "subscriber.confirmed"
UNSUBSCRIBED = "subscriber.unsubscribed"
BOUNCED = "subscriber.bounced"
COMPLAINED = "subscriber.complained"
ERASED = "subscriber.erased"
EDITION_SENT = "edition.sent"
ALERT_SENT = "alert.sent"
#: Every event a webhook can take, in the contract's order (``interface.md``).
EVENTS: tuple[str, ...] = (
    PENDING,
    CONFIRMED,
    UNSUBSCRIBED,
    BOUNCED,
    COMPLAINED,
    ERASED,
    EDITION_SENT,
    ALERT_SENT,
)
#: What ``digest webhooks test`` sends: no webhook subscribes to it, so none is queued.
TEST_EVENT = "webhook.test"

# A subscription moving to one of these statuses is reported; retiring (``inactive``, list
# hygiene) is the list's own housekeeping and has no event in the contract.
_BY_STATUS: dict[str, str] = {
    SubscriberStatus.PENDING.value: PENDING,
    SubscriberStatus.ACTIVE.value: CONFIRMED,
    SubscriberStatus.UNSUBSCRIBED.value: UNSUBSCRIBED,
    SubscriberStatus.BOUNCED.value: BOUNCED,
    SubscriberStatus.COMPLAINED.value: COMPLAINED,
}

# Queue row states.
QUEUED = "pending"
DELIVERED = "delivered"
DEAD = "dead"

#: Retries go on this long after the event, then it is dead (kept for ``digest status``).
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_DELAY = 30.0  # seconds before the first retry; doubling from there
MAX_DELAY = 3600.0  # no wait between two tries is longer than this


def event_for_status(status: str) -> str | None:
    """The event a subscription's move to ``status`` reports; None when it reports none."""
    return _BY_STATUS.get(status)


def parse_events(text: str) -> list[str]:
    """The events of ``--events E1,E2``, deduplicated in the contract's order; ValueError
    naming the unknown ones, or when none is given."""
    asked = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in asked if e not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event {', '.join(unknown)} (known: {', '.join(EVENTS)})")
    if not asked:
        raise ValueError(f"name at least one event: {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in asked]


def timestamp(at: datetime) -> str:
    """An instant as the bodies write it: ISO 8601 in UTC, milliseconds, ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body(event_id: str, type_: str, created: datetime, data: dict[str, Any]) -> str:
    """The exact JSON POSTed for an event, every time: ``{"id","type","created","data"}``."""
    envelope = {"id": event_id, "type": type_, "created": timestamp(created), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def retry_delay(attempts: int, jitter: float) -> timedelta:
    """The wait after the ``attempts``-th failed try: 30 s doubling, spread by ``jitter`` (0 to
    1: from three quarters to one and a quarter of it) so receivers that come back are not hit
    by every queued event at once, and never more than an hour."""
    base = FIRST_DELAY * 2.0 ** min(max(attempts, 1) - 1, 20)
    spread = 0.75 + 0.5 * min(max(jitter, 0.0), 1.0)
    return timedelta(seconds=min(MAX_DELAY, base * spread))


def after_failure(
    attempts: int, created: datetime, now: datetime, jitter: float
) -> datetime | None:
    """When to try again after the ``attempts``-th try failed at ``now``; None: give up (dead).

    The last try is made at the 24-hour mark itself, so an event gets its whole day.
    """
    deadline = created + GIVE_UP_AFTER
    if now >= deadline:
        return None
    return min(now + retry_delay(attempts, jitter), deadline)


#: A scheduled edition's key ends in its UTC hour ("1/daily:2026-11-29T07Z"): every tick in that
#: hour adds readers to it (a +5:30 zone joins at :30, +5:45 at :45).
_HOUR_KEY = re.compile(r":(\d{4}-\d\d-\d\dT\d\d)Z$")
#: After its hour, a tick that began in it may still be writing (a large edition).
SLOT_MARGIN = timedelta(minutes=15)


def slot_closes(key: str, edition_at: datetime) -> datetime:
    """When the edition ``key`` can take no more readers: a scheduled one (daily or weekly) an
    hour after its key's hour begins, plus a tick's margin; one made on demand or as a test
    copy is written whole in one transaction, so at ``edition_at``."""
    found = _HOUR_KEY.search(key)
    if found is None:
        return edition_at
    hour = datetime.strptime(found.group(1), "%Y-%m-%dT%H").replace(tzinfo=UTC)
    return hour + timedelta(hours=1) + SLOT_MARGIN


def _parts(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return None
    return parts


def _host_port(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"


def audited_url(url: str) -> str:
    """What the audit log keeps of a webhook URL: scheme://host[:port]/path, no user name,
    password, query or fragment (a receiver's token often rides in one of them)."""
    parts = _parts(url)
    if parts is None:
        return ""
    return urlunsplit((parts.scheme, _host_port(parts), parts.path, "", ""))


def redacted_url(url: str) -> str:
    """A webhook URL to show: user name and password, and each query value, as ``***``."""
    parts = _parts(url)
    if parts is None:
        return ""
    where = _host_port(parts)
    if parts.username is not None or parts.password is not None:
        where = "***@" + where
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***") for k, _ in pairs], safe="*")
    return urlunsplit((parts.scheme, where, parts.path, query, ""))
