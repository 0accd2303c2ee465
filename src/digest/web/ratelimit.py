"""The per-IP limit on subscribe requests, and who counts as one client.

On PostgreSQL the counts live in the store (``digest.rate_counters``), so the limit holds
across every web process and host; on SQLite (one machine) a sliding window of request times
per client in process memory does, sparing the single writer a write per request.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from digest.db import Database
from digest.rate_counters import StoreCounter

# Forget idle clients every so many requests, so a scan of many addresses cannot grow memory.
_PRUNE_EVERY = 1024
# Headers by which a proxy names the client it forwards.
_FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip")


class Limiter(Protocol):
    """What a route asks of a limit."""

    async def check(self, key: str) -> int | None:
        """Count one request for ``key``: None when allowed, else seconds to wait."""
        ...


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # sync routes run in a thread pool
        self._calls = 0

    def hit(self, key: str) -> int | None:
        """Count one request for ``key``: None when allowed, else seconds until one would be."""
        now = self._clock()
        with self._lock:
            self._calls += 1
            if self._calls % _PRUNE_EVERY == 0:
                self._prune(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                # A refused request is not counted: the client waits for the oldest to age out.
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return None

    def peek(self, key: str) -> int | None:
        """Like ``hit`` without counting: None while ``key`` is under its limit."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if hits is None or len(hits) < self.limit:
                return None
            return max(1, math.ceil(hits[0] + self.window - now))

    def give_back(self, key: str) -> None:
        """Uncount ``key``'s latest hit (a sign-in counted before checking it, that succeeded)."""
        with self._lock:
            hits = self._hits.get(key)
            if hits:
                hits.pop()

    async def check(self, key: str) -> int | None:
        """``hit``, for a route: memory only, so no thread hop."""
        return self.hit(key)

    def _prune(self, now: float) -> None:
        stale = [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]
        for key in stale:
            del self._hits[key]


class SharedWindow:
    """The limit counted in the store, shared by every process on it."""

    def __init__(self, counter: StoreCounter) -> None:
        self.counter = counter

    async def check(self, key: str) -> int | None:
        """Count one request for ``key`` in the store (off the event loop)."""
        return await run_in_threadpool(self.counter.hit, key)


def limiter_for(db: Database, limit: int, window: int, *, name: str) -> Limiter:
    """The limit of ``limit`` requests per ``window`` seconds: shared in a PostgreSQL store,
    in process memory on SQLite. ``name`` keeps one limit's counts apart from another's."""
    if db.dialect == "postgresql":
        return SharedWindow(StoreCounter(db, limit, window, prefix=f"{name}:"))
    return SlidingWindow(limit, float(window))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address in ``text``, an IPv4-mapped IPv6 one (``::ffff:a.b.c.d``) as its IPv4.

    A dual-stack listener (``--host ::``) sees every IPv4 client as mapped; keyed as IPv6 they
    would all share ``::/64``, one bucket for the whole IPv4 internet. ValueError if not one.
    """
    addr = ipaddress.ip_address(text.strip())
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_key(ip: str) -> str:
    """The key an address is limited under: the address, or its /64 for IPv6.

    One IPv6 host usually holds a whole /64, so limiting single addresses would let it rotate.
    """
    try:
        addr = _address(ip)
    except ValueError:
        return ip
    if addr.version == 6:
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str:
    """The client's address: the peer, or what a trusted proxy says in X-Forwarded-For.

    The header is read right to left, skipping trusted proxies; the first address not ours is
    the client. Anything a client wrote further left is ignored, since it could be invented.
    """
    try:
        peer = str(_address(peer or ""))
    except ValueError:
        peer = peer or "unknown"
    networks = _networks(tuple(trusted))
    if not forwarded_for or not networks or not _in(peer, networks):
        return peer
    for part in reversed([p.strip() for p in forwarded_for.split(",")]):
        if not part:
            continue
        if not _in(part, networks):
            try:
                return str(_address(part))
            except ValueError:
                return peer
    return peer


def forwarded_for(headers: Headers) -> str | None:
    """Every X-Forwarded-For line of the request, joined in order, as one list (RFC 9110 5.3).

    A proxy may add its own line below the client's (HAProxy's ``option forwardfor``) instead
    of appending to it: reading only the first line would take the client's invented address.
    """
    lines = headers.getlist("x-forwarded-for")
    return ", ".join(lines) if lines else None


def is_local(peer: str | None, headers: Headers, trusted: list[str]) -> bool:
    """Whether the client is this machine (loopback), as the peer or a trusted proxy says.

    A request a proxy forwards is refused unless that proxy is trusted and names the client in
    X-Forwarded-For: a reverse proxy on this machine would otherwise make every client local.
    """
    forwarded = any(name in headers for name in _FORWARDING)
    if forwarded and not (
        _in(peer or "", _networks(tuple(trusted))) and "x-forwarded-for" in headers
    ):
        return False
    try:
        return _address(client_ip(peer, forwarded_for(headers), trusted)).is_loopback
    except ValueError:
        return False


def _networks(trusted: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for item in trusted:
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            continue
    return nets


def _in(ip: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = _address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)
