"""The list's own health for ``digest check``: spam complaints against the 0.1 % and 0.3 %
lines Gmail and Yahoo draw, and hard bounces of the latest editions.

A complaint is counted once per address, when its suppression was recorded; a hard bounce is
a digest refused for an address that does not exist (RFC 3463 5.1.x), at the relay or later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.deliverability import report as r
from digest.deliverability.report import Finding
from digest.delivery.replies import is_hard_status
from digest.models import Delivery, Edition, Suppression
from digest.states import DeliveryKind, DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
S = Suppression.__table__  # type: ignore[attr-defined]

#: Gmail's and Yahoo's sender guidelines: stay under 0.1 %, never reach 0.3 %.
COMPLAINT_WARN = 0.001
COMPLAINT_FAIL = 0.003
#: Hard bounces above this share of an edition mark a list that needs cleaning.
HARD_BOUNCE_FAIL = 0.02
WINDOW = timedelta(days=30)
EDITIONS = 5
_STATUS = re.compile(r"(?<![\d.])5\.\d{1,3}\.\d{1,3}(?![\d.])")
# What ``bounces`` keeps for a ``POST /api/bounces`` event of type "hard" (its status).
_SAID_HARD = "bounced after it was accepted: hard"
# Ends a digest reaches once it went out (or was refused on the way).
_WENT = (DeliveryStatus.SENT.value, DeliveryStatus.BOUNCED.value)


@dataclass(frozen=True)
class Health:
    """The figures behind the two findings."""

    sent: int  # digests that went out in the window
    complaints: int  # complaints recorded in the window
    delivered: int  # digests of the latest editions that went out or bounced
    hard_bounces: int
    editions: int


def is_hard_bounce(reply: str) -> bool:
    """Whether a kept reply says the address does not exist (5.1.1 and kin, anywhere in it),
    or a mail service's event recorded through the admin API said "hard" in so many words."""
    return reply.startswith(_SAID_HARD) or any(
        is_hard_status(code) for code in _STATUS.findall(reply)
    )


def measure(session: Session, now: datetime) -> Health:
    """Count complaints and sent digests over the window, and hard bounces of the latest
    editions (test sends left out)."""
    since = now - WINDOW
    digest = D.c.kind == DeliveryKind.DIGEST.value
    sent = session.execute(
        sa.select(sa.func.count()).where(digest, D.c.sent_at >= since)
    ).scalar_one()
    complaints = session.execute(
        sa.select(sa.func.count()).where(S.c.reason == "complaint", S.c.created_at >= since)
    ).scalar_one()
    latest = (
        sa.select(E.c.id)
        .where(E.c.is_test.is_(False))
        .order_by(E.c.created_at.desc(), E.c.id.desc())
        .limit(EDITIONS)
    )
    edition_ids = list(session.execute(latest).scalars())
    rows = session.execute(
        sa.select(D.c.status, D.c.last_reply).where(
            digest, D.c.edition_id.in_(edition_ids), D.c.status.in_(_WENT)
        )
    ).all()
    hard = sum(1 for status, reply in rows if status == _WENT[1] and is_hard_bounce(reply or ""))
    return Health(int(sent), int(complaints), len(rows), hard, len(edition_ids))


def health_findings(health: Health) -> list[Finding]:
    """The complaint rate and the hard-bounce rate as findings."""
    return [_complaints(health), _bounces(health)]


def _complaints(h: Health) -> Finding:
    name = "complaint rate"
    if h.sent == 0:
        return r.ok(name, f"no digest went out in the last {WINDOW.days} days")
    rate = h.complaints / h.sent
    detail = f"{rate:.2%}: {h.complaints} complaints for {h.sent} digests in {WINDOW.days} days"
    fix = (
        "send only to readers who confirmed, make unsubscribing easy and visible, "
        "and mail less often those who stopped opening"
    )
    if rate >= COMPLAINT_FAIL:
        return r.fail(name, f"{detail} (Gmail and Yahoo refuse mail at 0.3 %)", fix)
    if rate >= COMPLAINT_WARN:
        return r.warn(name, f"{detail} (keep it under 0.1 %)", fix)
    return r.ok(name, detail)


def _bounces(h: Health) -> Finding:
    name = "hard bounces"
    if h.delivered == 0:
        return r.ok(name, "no edition went out yet")
    rate = h.hard_bounces / h.delivered
    detail = (
        f"{rate:.2%}: {h.hard_bounces} of {h.delivered} digests of the last "
        f"{h.editions} editions went to addresses that do not exist"
    )
    if rate > HARD_BOUNCE_FAIL:
        return r.fail(
            name,
            f"{detail} (over {HARD_BOUNCE_FAIL:.0%})",
            "import only lists whose readers opted in, and feed bounce reports to "
            "digest bounces import so dead addresses stop",
        )
    return r.ok(name, detail)
