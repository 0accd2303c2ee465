"""Pacing a worker: a send-rate limit, and a breaker that pauses sending while the server fails.

Both take the clock as an argument so their rules are tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_ADAPTIVE_RATE = 1.0  # messages per second a throttled worker still sends


class RateLimiter:
    """A token bucket: at most ``rate`` messages per second on average, bursts up to ``burst``.

    It also adapts when a mail service answers "too many requests" (``slow_down``): the rate
    is halved, with no limit configured it starts at half the rate of the last second, and it
    grows back by a twentieth of the rate it was throttled at each second (additive increase,
    multiplicative decrease, as TCP does), up to the configured rate, or without limit again
    once it is back where the service throttled it.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.ceiling = rate  # the configured rate (0: none), which adapting never exceeds
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = asyncio.Lock()
        self._window_start = self._last  # the uncapped rate, measured a second at a time
        self._window_count = 0
        self._measured = 0.0
        self._throttled_at = 0.0  # the rate a service refused; 0: not adapting
        self._calm_until = float("-inf")

    def delay(self) -> float:
        """Take one token; return how long to wait before using it (0 when one was ready)."""
        now = self.clock()
        if self._throttled_at:
            self._grow(now - self._last)
            if self.rate <= 0:  # grown back to where the service throttled: no cap again
                self._last = now
                return 0.0
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        """Wait for permission to send one message (no wait when the rate is 0: no cap)."""
        if self.rate <= 0:
            self._count()
            return
        async with self._lock:
            wait = self.delay()
        if wait > 0:
            await asyncio.sleep(wait)

    def slow_down(self) -> None:
        """A service asked for fewer requests (HTTP 429, SES throttling): halve the rate.

        Every request in flight when the service began refusing comes back refused; they are
        one signal, so the rate is halved at most once a second.
        """
        now = self.clock()
        if now < self._calm_until:
            return
        self._calm_until = now + 1.0
        current = self.rate if self.rate > 0 else self._recent_rate(now)
        self._throttled_at = max(current, 2 * MIN_ADAPTIVE_RATE)
        self.rate = max(MIN_ADAPTIVE_RATE, current / 2)
        self.burst = max(1.0, self.rate)
        self._tokens = min(self._tokens, self.burst)
        self._last = now

    def _grow(self, elapsed: float) -> None:
        self.rate += elapsed * self._throttled_at / 20
        limit = self.ceiling if self.ceiling > 0 else self._throttled_at
        if self.rate >= limit:
            self.rate, self._throttled_at = self.ceiling, 0.0
        self.burst = max(1.0, self.rate)

    def _count(self) -> None:
        self._window_count += 1
        now = self.clock()
        if now - self._window_start >= 1.0:
            self._measured = self._window_count / (now - self._window_start)
            self._window_start, self._window_count = now, 0

    def _recent_rate(self, now: float) -> float:
        # A few requests in a few milliseconds still say how fast it was going.
        current = self._window_count / max(now - self._window_start, 0.05)
        return max(self._measured, current)


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
