"""Recording bounces and complaints that arrive after the relay accepted a message.

The SMTP reply covers only the first hop; a relay that accepted a digest may learn an hour later
that the mailbox does not exist, and a reader may press "this is spam". Those come back as
reports (``dsn.py`` reads them) or as a mail service's webhook events; either way they become
``Report`` values, and ``record_reports`` applies them in the caller's transaction:

* hard bounce: the delivery becomes ``bounced``, the subscriber ``bounced``, the address is
  suppressed, and their queued mail is cancelled (the same path as a 5.1.1 at RCPT);
* soft bounce (mailbox full, message refused): the delivery becomes ``bounced``, the
  subscriber stays, unless their last ``DIGEST_SOFT_BOUNCE_LIMIT`` digests all bounced;
* complaint: the subscriber becomes ``complained`` and the address is suppressed;
* delay: nothing yet, the relay is still trying;
* unsubscribe request (a mail to the List-Unsubscribe mailto): the reader its signed token
  names is unsubscribed, as by the one-click link.

A report that came by mail is matched to the delivery by the VERP address it came back to
(``mail/verp.py``: its signed token names the delivery), else by the Message-ID it quotes,
which digest stored, and must name that delivery's address; a webhook event behind the admin
token may name only an address. A report that came back to a forged or altered token matches
nothing, whatever Message-ID it quotes. Recording the same report twice changes nothing the
second time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from digest import alert_optin, subscribers, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.delivery.dsn import Kind, Report
from digest.delivery.outcomes import Outcome
from digest.errors import InvalidToken, TokenExpired
from digest.links_auth import linked_subscriber
from digest.mail.message_id import digest_of
from digest.mail.verp import delivery_of
from digest.models import MAX_REPLY, Delivery, Subscriber
from digest.states import DeliveryKind, DeliveryStatus
from digest.tokens import Purpose

D = Delivery.__table__  # type: ignore[attr-defined]
# A delivery can only bounce after it went out (or while it is going out).
_SENT = DeliveryStatus.SENT.value
_BOUNCEABLE = (_SENT, DeliveryStatus.SENDING.value)
# RFC 3463 "mailbox status" codes (full, disabled, too big for it), in a kept reply.
_MAILBOX = re.compile(r"(?<![\d.])5\.2\.\d{1,3}(?![\d.])")
# The ends a digest that went out can reach; skipped and cancelled ones never went.
_OUTCOMES = (DeliveryStatus.SENT.value, DeliveryStatus.BOUNCED.value, DeliveryStatus.FAILED.value)
#: How a complaint marks the delivery it is about (its status stays): the start of its
#: ``last_reply``, which the per-mail reports count (``engagement_store``).
COMPLAINED = "complaint after it was accepted:"


@dataclass
class BounceTally:
    """What recording some reports did."""

    by_kind: Counter[str] = field(default_factory=Counter)
    unmatched: int = 0  # neither the Message-ID nor the address is ours
    stopped: int = 0  # subscribers who get no more mail because of these reports

    def add(self, other: BounceTally) -> None:
        """Fold ``other`` into this tally."""
        self.by_kind.update(other.by_kind)
        self.unmatched += other.unmatched
        self.stopped += other.stopped

    def as_dict(self) -> dict[str, int]:
        """Plain numbers for JSON and the CLI."""
        counts = {kind.value: self.by_kind[kind.value] for kind in Kind}
        return {**counts, "unmatched": self.unmatched, "stopped": self.stopped}


def record_reports(
    session: Session, reports: Iterable[Report], settings: Settings, *, trusted: bool = False
) -> BounceTally:
    """Apply ``reports`` to the outbox and the subscribers, in the caller's transaction.

    A report that came by mail could have been written by anyone, so it acts only when it
    quotes the Message-ID of one of our deliveries and names that delivery's address.
    ``trusted`` reports (the admin API's events, behind its token) may name only an address.
    """
    tally = BounceTally()
    soft: list[int] = []
    for report in reports:
        tally.by_kind[report.kind.value] += 1
        if not report.acts:
            continue
        if report.kind is Kind.UNSUBSCRIBE:
            _unsubscribe(session, settings, report.token or "", tally)
            continue
        row = _delivery(session, report, settings.secret)
        if row is not None:
            email: str | None = row.to_email if report.names(row.to_email) else None
        else:
            email = report.recipient if trusted else None
            if email is not None and subscribers.find(session, email) is None:
                email = None
        if email is None:
            tally.unmatched += 1
            continue
        if row is not None and report.kind in (Kind.HARD, Kind.SOFT):
            _mark_bounced(session, row.id, report)
            if report.kind is Kind.SOFT and row.subscriber_id is not None:
                soft.append(row.subscriber_id)
        if row is not None and report.kind is Kind.COMPLAINT:
            _mark_complained(session, row.id, report)
        if report.kind in (Kind.HARD, Kind.COMPLAINT):
            changed = subscriptions.record_bounce(
                session,
                email,
                subscriber_id=row.subscriber_id if row is not None else None,
                complaint=report.kind is Kind.COMPLAINT,
            )
            tally.stopped += int(changed)
    tally.stopped += escalate_soft_bounces(session, soft, settings.soft_bounce_limit)
    return tally


def apply_refusals(session: Session, outcomes: Sequence[Outcome], soft_bounce_limit: int) -> int:
    """What the server's refusals while sending mean for the subscribers, in the caller's
    transaction (the one that writes the outcomes): a hard bounce stops the subscriber and
    suppresses the address, and so do soft ones that make ``soft_bounce_limit`` bounced digests
    in a row. Returns how many subscribers stopped."""
    final = [o for o in outcomes if o.status not in (_SENT, DeliveryStatus.DEFERRED.value)]
    stopped = 0
    for o in final:
        # The address does not exist: mailing it again hurts the sender's reputation.
        if o.hard_bounce and o.to_email:
            stopped += subscriptions.record_bounce(
                session, o.to_email, subscriber_id=o.subscriber_id
            )
    soft = [
        o.subscriber_id
        for o in final
        if o.status == DeliveryStatus.BOUNCED.value and not o.hard_bounce
    ]
    stopped += escalate_soft_bounces(
        session, [sid for sid in soft if sid is not None], soft_bounce_limit
    )
    return stopped


def escalate_soft_bounces(session: Session, subscriber_ids: Iterable[int], limit: int) -> int:
    """Treat as bounced (mail stopped, address suppressed) each of these subscribers whose last
    ``limit`` digests that went out all bounced for their mailbox (RFC 3463 ``5.2.x``: full,
    disabled); 0 turns this off. Returns how many changed.

    A full mailbox now and then is normal; every digest of the last ``limit`` refused for the
    mailbox means it is dead. Refusals for policy or content (``5.7.x``, "looks like spam")
    say nothing about the reader and never count: one bad week at a provider must not cost
    digest all of that provider's readers.
    """
    if limit < 1:
        return 0
    changed = 0
    for subscriber_id in sorted(set(subscriber_ids)):
        replies = (
            session.execute(
                sa.select(D.c.status, D.c.last_reply, D.c.to_email)
                .where(
                    D.c.subscriber_id == subscriber_id,
                    D.c.kind == DeliveryKind.DIGEST.value,
                    D.c.status.in_(_OUTCOMES),
                )
                .order_by(D.c.id.desc())
                .limit(limit)
            )
        ).all()
        if len(replies) < limit or not all(
            status == DeliveryStatus.BOUNCED.value and _MAILBOX.search(reply or "")
            for status, reply, _ in replies
        ):
            continue
        person = session.get(Subscriber, subscriber_id)
        # Every counted bounce must be of their current address: a dead old mailbox says
        # nothing about the one they changed to.
        if person is None or any(to_email != person.email for _, _, to_email in replies):
            continue
        changed += int(subscriptions.record_bounce(session, person.email, subscriber_id=person.id))
    return changed


def _unsubscribe(session: Session, settings: Settings, token: str, tally: BounceTally) -> None:
    try:
        linked = linked_subscriber(session, settings, token, Purpose.UNSUBSCRIBE)
    except (InvalidToken, TokenExpired):
        linked = None  # forged, or signed under another key: nobody to unsubscribe
    if linked is None:
        tally.unmatched += 1
    elif linked.alerts_only and linked.newsletter_id is not None:
        # An alert's mailto: it turns off that newsletter's alerts, and keeps the digest.
        alert_optin.turn_off(session, linked.subscriber, linked.newsletter_id)
    elif subscriptions.unsubscribe(session, linked.subscriber, linked.newsletter_id):
        tally.stopped += 1


def _delivery(session: Session, report: Report, key: bytes) -> sa.Row | None:
    """The delivery a report is about: the one its VERP token names, else its Message-ID's."""
    columns = sa.select(D.c.id, D.c.subscriber_id, D.c.to_email)
    if report.verp_tokens:
        # Every token it came back to must be genuine and name the same delivery: one forged
        # or altered token, or two that disagree, and the report is nobody's.
        named = {delivery_of(token, key) for token in report.verp_tokens}
        if len(named) != 1 or None in named:
            return None
        return session.execute(columns.where(D.c.id == named.pop())).first()
    message_id = report.message_id
    if not message_id:
        return None
    digest = digest_of(message_id)
    if digest is not None:
        # Through the (edition, subscriber) key: digests' Message-IDs are not indexed.
        edition_id, subscriber_id = digest
        query = columns.where(
            D.c.edition_id == edition_id,
            D.c.subscriber_id == subscriber_id,
            D.c.message_id == message_id,
        )
    else:
        # Confirmations and tests: the partial index on Message-ID covers exactly these.
        # The kind as a literal, as in the index's predicate: a prepared statement's generic
        # plan could not use a partial index against a parameter.
        query = columns.where(
            D.c.message_id == message_id, sa.text("deliveries.kind != 'digest'")
        ).order_by(D.c.id.desc())
    return session.execute(query.limit(1)).first()


def _mark_bounced(session: Session, delivery_id: int, report: Report) -> None:
    reply = f"bounced after it was accepted: {report.status} {report.detail}".strip()
    session.execute(
        sa.update(D)
        .where(D.c.id == delivery_id, D.c.status.in_(_BOUNCEABLE))
        .values(
            status=DeliveryStatus.BOUNCED.value, last_reply=reply[:MAX_REPLY], updated_at=utcnow()
        )
    )


def _mark_complained(session: Session, delivery_id: int, report: Report) -> None:
    # Marked once: the same report recorded twice changes nothing more.
    reply = f"{COMPLAINED} {report.status} {report.detail}".strip()
    session.execute(
        sa.update(D)
        .where(
            D.c.id == delivery_id,
            sa.or_(D.c.last_reply.is_(None), ~D.c.last_reply.startswith(COMPLAINED)),
        )
        .values(last_reply=reply[:MAX_REPLY], updated_at=utcnow())
    )
