"""The desk's sign-in limits: failed attempts counted per account and per client address.

Only failures count (a wrong password, a wrong second-factor code), so a person who signs in
and out all day is never locked out; once an account or an address has had
``DIGEST_DESK_LOGIN_LIMIT`` failures in the window, even the right password is refused until
the window passes. Each attempt is counted *before* it is checked and given back when it
succeeds: checking a password takes a tenth of a second, and guesses sent all at once must
each be counted, not all pass a look at the count taken before any of them failed. The
account's count is kept under a hash of the address as the account lookup reads it (so
``Ann@Example.com`` and its fullwidth spelling share one count), whether or not it has an
account: the answer "too many attempts" tells nothing about which addresses exist.

The same per-account count guards the current-password checks of /desk/account.

On PostgreSQL the counts live in the store (``rate_hits``), shared by every web process; on
SQLite (one machine) a sliding window in process memory keeps them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from fastapi import Request

from digest import desk_accounts
from digest.config import Settings
from digest.db import Database
from digest.errors import InvalidEmail
from digest.rate_counters import StoreCounter
from digest.web.ratelimit import SlidingWindow, client_key

WINDOW_SECONDS = 15 * 60
TOO_MANY = "Too many sign-in attempts. Wait {minutes} minutes, then try again."


class _Counter(Protocol):
    def hit(self, key: str) -> int | None: ...

    def give_back(self, key: str) -> None: ...


def _counter(db: Database, limit: int, name: str) -> _Counter:
    if db.dialect == "postgresql":
        return StoreCounter(db, limit, WINDOW_SECONDS, prefix=f"{name}:")
    # The wall clock, as the store's counter uses: a window of minutes needs no monotonic one.
    return SlidingWindow(limit, float(WINDOW_SECONDS), clock=time.time)


def account_key(email: str) -> str:
    """The key an address's failures are counted under: short, the address as the account
    lookup files it (or, for no valid address, what was typed, lower-cased)."""
    try:
        address = desk_accounts.normal_address(email)
    except InvalidEmail:
        address = email.strip().lower()
    return hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class LoginLimits:
    """Failed sign-in attempts per account and per client address in a 15-minute window."""

    def __init__(self, db: Database, limit: int) -> None:
        self.by_account = _counter(db, limit, "desk-fail-account")
        self.by_ip = _counter(db, limit, "desk-fail-ip")

    def attempt(self, email: str, ip: str) -> int | None:
        """Count an attempt for the address typed and the client, before checking it: None
        when allowed (``succeeded`` gives it back if it was right), else seconds to wait
        (and nothing counted)."""
        ip_key = client_key(ip)
        wait = self.by_ip.hit(ip_key)
        if wait:
            return wait
        wait = self.by_account.hit(account_key(email))
        if wait:
            self.by_ip.give_back(ip_key)
        return wait

    def succeeded(self, email: str, ip: str) -> None:
        """The attempt counted by ``attempt`` was right: it is not a failure."""
        self.by_ip.give_back(client_key(ip))
        self.by_account.give_back(account_key(email))

    def account_attempt(self, email: str) -> int | None:
        """Like ``attempt``, for the account's count only (a signed-in person's current
        password: the session already names the account)."""
        return self.by_account.hit(account_key(email))

    def account_succeeded(self, email: str) -> None:
        """The attempt counted by ``account_attempt`` was right."""
        self.by_account.give_back(account_key(email))


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
