"""The webhook sender: POSTs the queued events, signed, and records what each receiver said.

Runs beside the delivery worker in ``digest serve`` and ``digest worker`` (``delivery/running``),
and once through after ``digest worker --until-empty`` and ``digest send``. Each round claims
as many due events as it has lanes (``webhook_queue``: fair by webhook), so every claimed event
is POSTed at once and its lease only has to outlast one POST; it POSTs each exact body with a
fresh ``Digest-Signature`` through the same SSRF guard as feeds (the address connected to is
checked), and writes each outcome as soon as that POST ends: a 2xx is delivered; any other
answer, a timeout or a refused connection is tried again later, for 24 hours, then the event is
dead (no answer, no connection or a 5xx holds the webhook's other events back as long).
Redirects are not followed: a receiver that moved answers 3xx, which is retried and shows in
``last_error``.

Once a minute it also completes the editions and alerts whose mail is all done
(``completion``), which queues their ``edition.sent`` and ``alert.sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from digest import completion, webhook_queue
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.errors import DigestError, first_line
from digest.mail.headers import printable_line
from digest.posts.fetch import AddressPolicy, GuardedTransport
from digest.webhook_signing import HEADER, sign

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
USER_AGENT = "digest-webhooks/1 (+newsletter digest)"
CONCURRENCY = 10  # POSTs in flight at once, and so events claimed at a time
POLL_SECONDS = 1.0  # an idle sender looks for due events this often
HOUSEKEEPING_SECONDS = 60.0  # completions and pruning


def policy_for(settings: Settings) -> AddressPolicy:
    """Where webhooks may go: public addresses, unless DIGEST_ALLOW_PRIVATE_WEBHOOKS."""
    return AddressPolicy(
        allow_private=settings.allow_private_webhooks,
        setting="DIGEST_ALLOW_PRIVATE_WEBHOOKS",
        verb="post to",
    )


def client_for(settings: Settings) -> httpx.AsyncClient:
    """An HTTP client through the SSRF guard, with the webhook timeout, following no redirect."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy_for(settings)),
        timeout=httpx.Timeout(settings.webhook_timeout),
        follow_redirects=False,
        trust_env=False,  # an environment proxy would resolve names beyond the guard
        headers={"User-Agent": USER_AGENT},
    )


async def post(
    client: httpx.AsyncClient, url: str, body: str, secret: str, t: int, timeout: float
) -> httpx.Response:
    """POST one event's exact body, signed at ``t``; the receiver's answer, or an exception."""
    data = body.encode("utf-8")
    headers = {"Content-Type": "application/json", HEADER: sign(secret, data, t)}
    async with asyncio.timeout(timeout):
        return await client.post(url, content=data, headers=headers)


def failure(exc: BaseException) -> str:
    """Why a POST failed, as one printable line for ``last_error``."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return printable_line(f"cannot connect: {first_line(exc)}")[:500]
    return printable_line(f"{type(exc).__name__}: {first_line(exc)}")[:500]


class WebhookSender:
    """Sends due webhook events from the store; ``clock`` is what it takes as now."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Clock = utcnow,
        lease: timedelta | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        # No more is claimed than there are lanes, so each claimed event's POST starts at once
        # and cannot outlast its timeout: a lease of a few timeouts (its outcome written right
        # after) cannot run out on a living sender.
        self.lease = lease or timedelta(seconds=max(60.0, 3 * settings.webhook_timeout))
        self.counts = {"delivered": 0, "retry": 0, "dead": 0}
        self._client: httpx.AsyncClient | None = None

    async def send_due(self, limit: int = CONCURRENCY) -> int:
        """One round: claim what is due (no more than the lanes), POST each and record its
        outcome as soon as it ends; how many were tried."""
        now = self.clock()
        claimed = await asyncio.to_thread(self._claim, now, min(limit, CONCURRENCY))
        if not claimed:
            return 0
        if self._client is None:
            self._client = client_for(self.settings)

        async def one(due: webhook_queue.Due) -> None:
            tried = await self._post(due)
            outcome = await asyncio.to_thread(self._record, [tried], claimed, self.clock())
            for key, n in outcome.items():
                self.counts[key] = self.counts.get(key, 0) + n

        await asyncio.gather(*(one(d) for d in claimed.values()))
        return len(claimed)

    async def _post(self, due: webhook_queue.Due) -> webhook_queue.Tried:
        """POST one claimed event: what came of it."""
        t = int(self.clock().timestamp())
        try:
            answer = await post(
                self._client,  # type: ignore[arg-type]
                due.url,
                due.body,
                due.secret,
                t,
                self.settings.webhook_timeout,
            )
        except (OSError, TimeoutError, httpx.HTTPError, DigestError) as exc:
            # No connection or no answer: the receiver is down; a refusal by the SSRF guard
            # (a DigestError) is about this address, so it holds the others back too.
            return webhook_queue.Tried(due.id, due.lease, failure(exc), unreachable=True)
        if 200 <= answer.status_code < 300:
            return webhook_queue.Tried(due.id, due.lease)
        why = f"the receiver answered {answer.status_code} {answer.reason_phrase}"
        broken = answer.status_code >= 500
        return webhook_queue.Tried(
            due.id, due.lease, printable_line(why.strip()), unreachable=broken
        )

    async def housekeeping(self) -> tuple[int, int]:
        """Complete finished editions and alerts (queueing their events), prune old rows."""
        return await asyncio.to_thread(self._housekeeping, self.clock())

    async def drain(self) -> dict[str, int]:
        """Send everything due now, then stop (``--until-empty``)."""
        await self.housekeeping()
        while await self.send_due():
            pass
        await self.close()
        return self.counts

    async def run(self, stop: asyncio.Event) -> dict[str, int]:
        """Send until ``stop`` is set; a store that is down is waited for, not fatal."""
        last_housekeeping = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - last_housekeeping >= HOUSEKEEPING_SECONDS:
                        last_housekeeping = time.monotonic()
                        await self.housekeeping()
                    if await self.send_due():
                        continue
                except DigestError as exc:
                    log.warning("webhooks: %s; trying again shortly", exc)
                except Exception:  # one bad round must not take the service down with it
                    log.exception("webhooks: sending failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)
        finally:
            await self.close()
        return self.counts

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- in threads (the store is synchronous) -------------------------------------------------

    def _claim(self, now: datetime, limit: int) -> dict[int, webhook_queue.Due]:
        with self.db.transaction() as session:
            return {d.id: d for d in webhook_queue.claim(session, now, limit, self.lease)}

    def _record(
        self,
        tried: list[webhook_queue.Tried],
        claimed: dict[int, webhook_queue.Due],
        now: datetime,
    ) -> dict[str, int]:
        with self.db.transaction() as session:
            return webhook_queue.record(session, tried, claimed, now)

    def _housekeeping(self, now: datetime) -> tuple[int, int]:
        with self.db.transaction() as session:
            done = completion.complete_due(session, now)
            webhook_queue.prune(session, now)
        if any(done):
            log.info("mail done", extra={"editions": done[0], "alerts": done[1]})
        return done
