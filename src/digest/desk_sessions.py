"""Signed-in desk sessions, kept in the store: opened at sign-in, looked up per request,
ended by logout, by "log out everywhere", by a new password, or by their timeouts.

The browser holds a random 256-bit value; the store holds only its SHA-256. Each session has
its own CSRF token, compared in constant time with the one a form sends back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from digest.models import DeskSession, DeskUser

# A session is touched at most this often: a write per page view would make every read a write.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Opened:
    """A session just opened: the cookie value to hand to the browser, and its row."""

    cookie: str
    row: DeskSession


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "surrogatepass")).hexdigest()


def open_session(
    session: Session,
    user: DeskUser,
    now: datetime,
    *,
    lifetime: timedelta,
    ip: str | None,
    user_agent: str | None,
    pending_totp: bool = False,
) -> Opened:
    """A new session for ``user`` with a fresh id (never one the browser brought along)."""
    cookie = secrets.token_urlsafe(32)
    row = DeskSession(
        token_hash=_digest(cookie),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        ip=(ip or None) and ip[:64],
        user_agent=(user_agent or None) and user_agent[:512],
        pending_totp=pending_totp,
    )
    session.add(row)
    session.flush()
    return Opened(cookie, row)


def lookup(
    session: Session, cookie: str | None, now: datetime, *, idle: timedelta
) -> tuple[DeskSession, DeskUser] | None:
    """The live session of ``cookie`` and its account, touched; None when there is none or
    it has run out (an expired row is deleted on the way)."""
    if not cookie or len(cookie) > 200:
        return None
    found = session.exec(
        select(DeskSession, DeskUser)
        .join(DeskUser, col(DeskUser.id) == col(DeskSession.user_id))
        .where(col(DeskSession.token_hash) == _digest(cookie))
    ).first()
    if found is None:
        return None
    row, user = found
    if now >= row.expires_at or now - row.last_seen_at >= idle:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return row, user


def close(session: Session, cookie: str | None) -> None:
    """End the session of ``cookie``, if there is one."""
    if cookie:
        session.exec(delete(DeskSession).where(col(DeskSession.token_hash) == _digest(cookie)))  # type: ignore[call-overload]


def sweep(session: Session, now: datetime, *, idle: timedelta) -> int:
    """Delete the sessions that have run out; how many."""
    result = session.exec(
        delete(DeskSession).where(  # type: ignore[call-overload]
            (col(DeskSession.expires_at) <= now) | (col(DeskSession.last_seen_at) <= now - idle)
        )
    )
    return int(result.rowcount or 0)


def csrf_ok(row: DeskSession, token: str | None) -> bool:
    """Whether ``token`` is this session's CSRF token."""
    return bool(token) and hmac.compare_digest(row.csrf_token.encode(), str(token).encode())


def of_user(session: Session, user_id: int | None) -> list[DeskSession]:
    """The account's signed-in sessions (not those half-way through sign-in), latest first."""
    return list(
        session.exec(
            select(DeskSession)
            .where(col(DeskSession.user_id) == user_id, col(DeskSession.pending_totp).is_(False))
            .order_by(col(DeskSession.last_seen_at).desc(), col(DeskSession.id).desc())
        ).all()
    )
