"""The desk's second factor: time-based one-time codes (RFC 6238, via pyotp).

A person enrols by typing a code from their authenticator app; only then is the secret
saved. The secret shown while enrolling is not stored anywhere: it is derived from the
server's secret key and the session's token hash, so the same page shows the same key until
the session ends, and nobody else's session can produce it. Each accepted code's time step is
kept, so a code seen over someone's shoulder cannot be used a second time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from digest import audit
from digest.audit import Actor
from digest.clock import utcnow
from digest.models import DeskUser

STEP_SECONDS = 30
#: A code from the step before or after is accepted too (clocks drift, people type slowly).
VALID_WINDOW = 1


def pending_secret(secret_key: str, token_hash: str) -> str:
    """The base32 secret offered to the session ``token_hash`` for enrolment (not stored)."""
    key = hashlib.sha256(b"desk-totp-enrol\0" + secret_key.encode()).digest()
    raw = hmac.new(key, token_hash.encode(), hashlib.sha256).digest()[:20]
    return base64.b32encode(raw).decode("ascii")


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The ``otpauth://`` address an authenticator app reads, as text."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is (within ``VALID_WINDOW`` steps of ``now``)."""
    typed = "".join(code.split())
    # isdigit() alone takes Arabic-Indic or fullwidth digits, which no authenticator shows.
    if not (typed.isascii() and typed.isdigit() and len(typed) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        # Every candidate is compared (no early exit), in constant time.
        if hmac.compare_digest(totp.at(step * STEP_SECONDS).encode(), typed.encode()):
            found = step
    return found


def check(session: Session, user: DeskUser, code: str, now: datetime) -> bool:
    """Whether ``code`` is a fresh code of ``user``'s second factor (the step is remembered,
    so a replayed code, or an older one, is refused)."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    # One conditional write, not read-then-write: of two sign-ins racing with the same code,
    # the second waits for the first's row lock, then finds the step taken and matches no row.
    last = col(DeskUser.totp_last_step)
    taken = session.exec(  # type: ignore[call-overload]
        update(DeskUser)
        .where(col(DeskUser.id) == user.id, or_(last.is_(None), last < step))
        .values(totp_last_step=step)
    )
    if taken.rowcount != 1:
        return False
    set_committed_value(user, "totp_last_step", step)  # the object agrees with its row
    return True


def enrol(
    session: Session, actor: Actor, user: DeskUser, secret: str, code: str, now: datetime
) -> bool:
    """Save ``secret`` as ``user``'s second factor if ``code`` is one of its codes."""
    step = matching_step(secret, code, now)
    if step is None:
        return False
    user.totp_secret = secret
    user.totp_last_step = step
    user.updated_at = utcnow()
    session.add(user)
    audit.record(
        session, actor, "user.totp_enrol", user.email, before={"totp": False}, after={"totp": True}
    )
    return True


def remove(session: Session, actor: Actor, user: DeskUser) -> None:
    """Remove ``user``'s second factor."""
    before = user.totp_secret is not None
    user.totp_secret = None
    user.totp_last_step = None
    user.updated_at = utcnow()
    session.add(user)
    audit.record(
        session,
        actor,
        "user.totp_remove",
        user.email,
        before={"totp": before},
        after={"totp": False},
    )
