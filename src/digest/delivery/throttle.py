"""Pacing a worker: a send-rate limit, and a breaker that pauses sending while the server fails.

Both take the clock as an argument so their rules are tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class RateLimiter:
    """A token bucket: at most ``rate`` messages per second on average, bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Take one token; return how long to wait before using it (0 when one was ready)."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        """Wait for permission to send one message (no wait when the rate is 0: no cap)."""
        if self.rate <= 0:
            return
        async with self._lock:
            wait = self.delay()
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive systemic failures (lost connections, 4xx, 421).

    While open, nothing is sent; after ``cooldown`` seconds one probe goes through
    (half-open): a success closes the breaker, a failure opens it again for twice as long,
    up to ``max_cooldown``.
    """

    threshold: int = 20
    cooldown: float = 5.0
    max_cooldown: float = 300.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    current_cooldown: float = field(default=0.0)
    probing: bool = False
    trips: int = 0

    def record(self, *, ok: bool, systemic: bool) -> None:
        """Count one result: a success resets the run, a systemic failure extends it."""
        if ok:
            self.failures = 0
            self.opened_at = None
            self.current_cooldown = 0.0
            self.probing = False
            return
        if not systemic:
            return
        self.failures += 1
        if self.probing or (self.opened_at is None and self.failures >= self.threshold):
            self.current_cooldown = (
                min(self.max_cooldown, self.current_cooldown * 2)
                if self.probing and self.current_cooldown
                else self.cooldown
            )
            if self.opened_at is None:
                self.trips += 1
            self.opened_at = self.clock()
            self.probing = False

    @property
    def is_open(self) -> bool:
        """Whether sending is paused (open and not yet due for a probe)."""
        return self.opened_at is not None

    def wait(self) -> float:
        """Seconds until a probe may go; 0 when closed or when the probe is due."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.current_cooldown - self.clock())

    def start_probe(self) -> None:
        """Let one message through to test the server."""
        self.probing = True
