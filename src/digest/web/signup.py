"""What a subscribe request does to the store: record consent, maybe queue a confirmation mail.

Kept apart from the HTTP route so the rules (who gets a mail, the per-address cap) read as
plain code over a session, in the one transaction that holds the subscription and its mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from digest import subscribers
from digest.addresses import clean_name, email_domain, normalize_email
from digest.compose.render import DigestRenderer
from digest.config import Settings
from digest.delivery.outbox import queue_transactional
from digest.errors import InvalidInput
from digest.lifecycle import needs_confirmation_mail
from digest.links import confirm_url
from digest.models import Delivery
from digest.states import DeliveryKind
from digest.subscribers import Consent, parse_cadence, parse_topics

HONEYPOT = "website"
CONFIRM_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class SubscribeRequest:
    """A subscribe form, validated: the address normalised, the rest cleaned."""

    email: str
    name: str | None = None
    cadence: str | None = None
    topics: list[str] | None = None
    source: str | None = None
    is_bot: bool = False  # the hidden honeypot field was filled


def parse_request(fields: Mapping[str, Iterable[str]]) -> SubscribeRequest:
    """Validate the fields of a subscribe form; InvalidEmail/InvalidInput say what is wrong."""
    values = {k: list(v) for k, v in fields.items()}

    def one(name: str) -> str | None:
        got = values.get(name)
        return got[0] if got else None

    is_bot = bool((one(HONEYPOT) or "").strip())
    raw_email = one("email")
    if raw_email is None:
        raise InvalidInput("email: an email address is required")
    email = normalize_email(raw_email)
    name = one("name")
    cadence = one("cadence")
    topics_raw = values.get("topics")
    topics = None
    if topics_raw is not None:
        # A checkbox group sends one value per box; a script may send "a,b" in one.
        joined = [part for value in topics_raw for part in value.split(",")]
        topics = parse_topics(joined)
    return SubscribeRequest(
        email=email,
        name=clean_name(name) if name is not None else None,
        cadence=parse_cadence(cadence) if cadence not in (None, "") else None,
        topics=topics,
        source=clean_name(one("source"), limit=200) or None,
        is_bot=is_bot,
    )


def is_blocked(email: str, blocked_domains: Iterable[str]) -> bool:
    """Whether the address's domain, or a domain it is under, is on the block list."""
    domain = email_domain(email).lower()
    for blocked in blocked_domains:
        b = blocked.strip().lower().lstrip("@").rstrip(".")
        if b and (domain == b or domain.endswith("." + b)):
            return True
    return False


def confirmations_sent(session: Session, subscriber_id: int, since: datetime) -> int:
    """Confirmation mails queued for this subscriber since ``since``."""
    query = select(func.count()).where(
        col(Delivery.subscriber_id) == subscriber_id,
        col(Delivery.kind) == DeliveryKind.CONFIRM.value,
        col(Delivery.created_at) >= since,
    )
    return int(session.exec(query).one())


def record_subscription(
    session: Session,
    settings: Settings,
    renderer: DigestRenderer,
    request: SubscribeRequest,
    *,
    consent: Consent,
    domain: str,
) -> bool:
    """Record the request and queue a confirmation mail when one is due; True when queued.

    The mail is rendered whether or not it is queued, so a known address costs the same time
    as a new one and the answer's timing says little about who is subscribed.
    """
    done = subscribers.record_request(
        session,
        request.email,
        consent=consent,
        name=request.name,
        cadence=request.cadence,
        topics=request.topics,
        default_timezone=settings.timezone,
        default_send_hour=settings.send_hour,
    )
    mail = renderer.render_confirm(
        name=done.name,
        confirm_url=confirm_url(settings, done.subscriber_id, done.email, now=consent.at),
    )
    if not needs_confirmation_mail(done.prior):
        return False
    # A new address has had no mail yet: the count is only asked for one already known.
    # record_request has just updated that subscriber's row, which holds its row lock (and
    # SQLite's write lock) until commit: a second web process asking for the same address
    # waits there and then counts this mail, so a burst cannot slip past the limit.
    if done.prior is not None and (
        confirmations_sent(session, done.subscriber_id, consent.at - CONFIRM_WINDOW)
        >= settings.confirm_limit
    ):
        # Subscription bombing: someone keeps entering a victim's address. The request is
        # recorded, the answer is the same, but the victim's inbox gets nothing more.
        return False
    queue_transactional(
        session,
        kind=DeliveryKind.CONFIRM.value,
        to_email=done.email,
        subscriber_id=done.subscriber_id,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        domain=domain,
    )
    return True
