"""The desk's sign-in limits: failed attempts counted per account and per client address.

Only failures count (a wrong password, a wrong second-factor code), so a person who signs in
and out all day is never locked out; every attempt is checked against the counts first, so
once an account or an address has had ``DIGEST_DESK_LOGIN_LIMIT`` failures in the window,
even the right password is refused until the window passes. The account's count is kept
under a hash of the address as typed, whether or not it has an account: the answer "too many
attempts" tells nothing about which addresses exist.

On PostgreSQL the counts live in the store (``rate_hits``), shared by every web process; on
SQLite (one machine) a sliding window in process memory keeps them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from fastapi import Request

from digest.config import Settings
from digest.db import Database
from digest.rate_counters import StoreCounter
from digest.web.ratelimit import SlidingWindow, client_key

WINDOW_SECONDS = 15 * 60
TOO_MANY = "Too many sign-in attempts. Wait {minutes} minutes, then try again."


class _Counter(Protocol):
    def hit(self, key: str) -> int | None: ...

    def peek(self, key: str) -> int | None: ...


def _counter(db: Database, limit: int, name: str) -> _Counter:
    if db.dialect == "postgresql":
        return StoreCounter(db, limit, WINDOW_SECONDS, prefix=f"{name}:")
    # The wall clock, as the store's counter uses: a window of minutes needs no monotonic one.
    return SlidingWindow(limit, float(WINDOW_SECONDS), clock=time.time)


def account_key(email: str) -> str:
    """The key an address's failures are counted under: short, whatever was typed."""
    return hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:40]


class LoginLimits:
    """Failed sign-in attempts per account and per client address in a 15-minute window."""

    def __init__(self, db: Database, limit: int) -> None:
        self.by_account = _counter(db, limit, "desk-fail-account")
        self.by_ip = _counter(db, limit, "desk-fail-ip")

    def wait(self, email: str, ip: str) -> int | None:
        """None while both counts are under the limit, else seconds until a try is allowed."""
        return self.by_ip.peek(client_key(ip)) or self.by_account.peek(account_key(email))

    def failed(self, email: str, ip: str) -> None:
        """Count one failed attempt for the address typed and for the client."""
        self.by_ip.hit(client_key(ip))
        self.by_account.hit(account_key(email))


def login_limits(request: Request, settings: Settings) -> LoginLimits:
    """The app's limits (made on first use, one per app so its counts are shared)."""
    state = request.app.state
    if not hasattr(state, "desk_login_limits"):
        state.desk_login_limits = LoginLimits(state.db, settings.desk_login_limit)
    limits: LoginLimits = state.desk_login_limits
    return limits


def too_many(wait: int) -> str:
    """The message for a refused attempt: how many minutes to wait."""
    return TOO_MANY.format(minutes=max(1, -(-wait // 60)))
