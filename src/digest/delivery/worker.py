"""The sending loop: claim a batch, build each message, send them over the pool, record outcomes.

The loop depends on two small protocols, a ``Store`` (claim, record, give back, bodies;
``store.py``) and a ``Transport`` (send one message; ``transport.py``), so it never sees SQL or
SMTP. ``SqlStore`` is the outbox behind the first; ``running.py`` picks the second and runs it.

While batch k is being sent, batch k+1 is claimed and batch k-1's outcomes are written, so the
database never stalls the connections. A row is marked sent only after the server accepted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from digest import links
from digest.clock import utcnow
from digest.config import Settings
from digest.delivery.outcomes import LATE_REPLY, NEWSLETTER_MAIL, Claimed, Outcome, outcome_for
from digest.delivery.replies import Stage, Verdict
from digest.delivery.store import Store
from digest.delivery.throttle import Breaker, RateLimiter
from digest.delivery.transport import Result, Transport
from digest.errors import DigestError, StoreUnavailable
from digest.mail.content import MailContent
from digest.mail.message import Personal, Sender, assemble
from digest.mail.verp import verp_address
from digest.newsletter_config import configure
from digest.states import DeliveryKind, DeliveryStatus
from digest.tracking import TEST_COPY, TrackingMode, aggregate_copy, reader_copy

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# An idle worker looks for new mail this often: a breaking-news alert must leave within a
# second of being queued (bench/alert_latency.py); an empty claim is three index probes.
POLL_SECONDS = 0.4
STORE_RETRY_SECONDS = 5.0  # a long-running worker waits this long after a failed claim
FLUSH_EVERY = 50  # outcomes written at a time while a batch is on the wire
SHUTDOWN_GRACE = 20.0  # in-flight sends get this long after SIGTERM; the whole exit stays < 30 s
SENDERS_FRESH_FOR = 60.0  # seconds a newsletter's From and List-Id are kept before re-reading
SIGNING_THREADS = 2  # RSA signing releases the GIL: signed messages are built beside the loop


@dataclass
class BatchResult:
    """What sending one batch produced: outcomes (the first ``recorded`` already written)
    and the ids that were not tried."""

    outcomes: list[Outcome] = field(default_factory=list)
    recorded: int = 0
    untried: list[int] = field(default_factory=list)


@dataclass
class Tally:
    """What a worker did: outcomes by status, batches, and messages given back."""

    counts: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    given_back: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """Plain data for logs and JSON."""
        return {
            "counts": dict(self.counts),
            "batches": self.batches,
            "given_back": self.given_back,
            "seconds": round(self.seconds, 3),
        }


class Worker:
    """Sends what the store hands out through the transport, honouring rate and breaker."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        transport: Transport,
        *,
        batch_size: int = BATCH_SIZE,
        concurrency: int | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.transport = transport
        self.batch_size = batch_size
        self.concurrency = concurrency or settings.smtp_connections
        self.breaker = breaker or Breaker()
        self.rate = RateLimiter(settings.send_rate)
        self.sender = Sender.from_settings(settings)
        # Each newsletter's own From, Reply-To and List-Id, read from the store now and then.
        self._senders: dict[int, Sender] = {}
        self._senders_read = 0.0
        self.envelope_from = settings.envelope_from
        self.verp_key = settings.secret if settings.verp else None
        self.deadline = timedelta(hours=settings.retry_deadline_hours)
        self.lease_seconds = settings.lease_seconds
        self.tracking = settings.tracking
        self.tally = Tally()
        self._bodies: OrderedDict[int, MailContent] = OrderedDict()
        self._signing: ThreadPoolExecutor | None = None

    # -- building ------------------------------------------------------------------------------

    async def _load_senders(self, batch: Sequence[Claimed]) -> None:
        wanted = {c.newsletter_id for c in batch if c.newsletter_id is not None}
        stale = time.monotonic() - self._senders_read > SENDERS_FRESH_FOR
        if wanted and (stale or not wanted <= self._senders.keys()):
            found = await self.store.newsletters()
            self._senders = {
                int(n.id or 0): Sender.for_newsletter(self.settings, configure(n, self.settings))
                for n in found
            }
            self._senders_read = time.monotonic()

    def sender_for(self, item: Claimed) -> Sender:
        """The From, Reply-To and List-Id of the newsletter the delivery is mail of."""
        if item.newsletter_id is None:
            return self.sender
        return self._senders.get(item.newsletter_id, self.sender)

    async def _load_bodies(self, batch: Sequence[Claimed]) -> None:
        await self._load_senders(batch)
        missing = {c.body_id for c in batch if c.body_id is not None} - self._bodies.keys()
        if missing:
            self._bodies.update(await self.store.bodies(sorted(missing)))
        while len(self._bodies) > 256:  # transactional bodies are used once; keep the recent
            self._bodies.popitem(last=False)

    def build(self, item: Claimed) -> bytes:
        """The message bytes of one delivery (ValueError when it cannot be built)."""
        body = self._bodies.get(item.body_id) if item.body_id is not None else None
        if body is None:
            raise ValueError("its body is missing")
        unsubscribe = preferences = unsubscribe_all = None
        if item.kind in NEWSLETTER_MAIL:
            if item.subscriber_id is None:
                raise ValueError(f"a {item.kind} mail without a subscriber")
            sid, email = item.subscriber_id, item.to_email
            # List mail: its one-click link leaves this newsletter; the footer offers all.
            unsubscribe = links.unsubscribe_url(self.settings, sid, email, item.newsletter_id)
            if item.kind == DeliveryKind.ALERT.value and item.newsletter_id is not None:
                # An alert's one click (and its footer's) turns off that newsletter's alerts
                # and keeps its digest: a reader tired of alerts need not lose the newsletter.
                unsubscribe = links.alerts_off_url(self.settings, sid, email, item.newsletter_id)
            unsubscribe_all = links.unsubscribe_url(self.settings, sid, email, None)
            preferences = links.preferences_url(self.settings, sid, email)
        is_test = item.kind == DeliveryKind.TEST.value
        text, html, track = body.text, body.html, ""
        if body.tracked and self.tracking is not TrackingMode.OFF and not item.tracking_opt_out:
            text, html = body.tracked_text or "", body.tracked_html or ""
            track = self._copy_part(item, is_test)
        personal = Personal(
            to_email=item.to_email,
            to_name=item.to_name,
            message_id=item.message_id,
            date=utcnow(),
            unsubscribe_url=unsubscribe,
            preferences_url=preferences,
            unsubscribe_all_url=unsubscribe_all,
            is_test=is_test,
            track=track,
        )
        return assemble(body.subject, text, html, personal, self.sender_for(item))

    def _copy_part(self, item: Claimed, is_test: bool) -> str:
        """What fills ``%%TRACK%%`` in this copy: a test mark, the reader signed for this
        mail (per-reader tracking), or a random tag that names nobody."""
        if is_test:
            return "." + TEST_COPY
        if (
            self.tracking is TrackingMode.PER_READER
            and item.subscriber_id is not None
            and item.mail is not None
        ):
            return reader_copy(self.settings.secret, item.mail, item.subscriber_id)
        return aggregate_copy(self.settings.secret, item.mail)

    def envelope(self, item: Claimed) -> str:
        """The envelope sender of one delivery: with VERP, one that names it (``mail/verp.py``)."""
        if self.verp_key is None:
            return self.envelope_from
        return verp_address(self.envelope_from, item.id, self.verp_key)

    async def _build(self, item: Claimed) -> bytes:
        if self.sender.signer is None:
            return self.build(item)
        # A DKIM signature is an RSA operation of about 0.3 ms, as long as building and sending
        # the message; in threads (cryptography releases the GIL) it overlaps the loop's work.
        if self._signing is None:
            self._signing = ThreadPoolExecutor(SIGNING_THREADS, thread_name_prefix="dkim")
        return await asyncio.get_running_loop().run_in_executor(self._signing, self.build, item)

    # -- sending -------------------------------------------------------------------------------

    async def _send_one(self, item: Claimed) -> Outcome:
        if item.send_by is not None and utcnow() >= item.send_by:
            # Claimed in time but its turn came late (a long batch, a slow server): an alert
            # must not go out in quiet hours or on another local day; its story is folded.
            return Outcome(item.id, DeliveryStatus.SKIPPED.value, LATE_REPLY)
        try:
            data = await self._build(item)
        except ValueError as exc:
            result = Result(None, f"cannot build the message: {exc}", Stage.LOCAL)
            return outcome_for(item, result, now=utcnow(), deadline=self.deadline)
        await self.rate.acquire()
        result = await self.transport.send(self.envelope(item), item.to_email, data)
        if result.throttled:
            self.rate.slow_down()
        verdict = result.classify()
        self.breaker.record(ok=verdict.verdict is Verdict.SENT, systemic=verdict.systemic)
        return outcome_for(item, result, now=utcnow(), deadline=self.deadline)

    async def send_batch(self, batch: Sequence[Claimed], stop: asyncio.Event) -> BatchResult:
        """Send a batch over ``concurrency`` lanes, writing outcomes every ``FLUSH_EVERY``."""
        await self._load_bodies(batch)
        pending = iter(batch)
        result = BatchResult()
        flushing: asyncio.Future[None] | None = None

        async def flush(upto: int) -> None:
            try:
                await self.store.record(result.outcomes[result.recorded : upto])
                result.recorded = upto
            except StoreUnavailable as exc:
                log.warning("%s; outcomes kept for the end of the batch", exc)

        async def lane() -> None:
            nonlocal flushing
            for item in pending:
                # Stop taking new messages on shutdown or while the server is failing; those
                # leases are given back untouched.
                if stop.is_set() or (self.breaker.is_open and not self.breaker.probing):
                    continue
                result.outcomes.append(await self._send_one(item))
                # Written as they come, a few dozen at a time: a crash can then repeat only
                # those accepted since the last write, not a whole batch.
                if (flushing is None or flushing.done()) and (
                    len(result.outcomes) - result.recorded >= FLUSH_EVERY
                ):
                    flushing = asyncio.ensure_future(flush(len(result.outcomes)))

        lanes = [asyncio.ensure_future(lane()) for _ in range(min(self.concurrency, len(batch)))]
        done = asyncio.ensure_future(asyncio.gather(*lanes))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({done, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not done.done():
            # Shutdown: what is in flight may finish within the grace period, then it is cut
            # (a message cut after the server took it goes again later, same Message-ID).
            await asyncio.wait({done}, timeout=SHUTDOWN_GRACE)
            if not done.done():
                done.cancel()
                await asyncio.wait({done}, timeout=2)
        stopping.cancel()
        if done.done() and not done.cancelled() and done.exception() is not None:
            log.error("sending failed: %r", done.exception())
        if flushing is not None:
            await flushing
        # Whatever has no outcome (not tried, cut, or hit by a bug) goes back to the queue.
        with_outcome = {o.delivery_id for o in result.outcomes}
        result.untried = [c.id for c in batch if c.id not in with_outcome]
        return result

    async def run(self, stop: asyncio.Event, *, until_empty: bool = False) -> Tally:
        """Send until ``stop`` is set (or, with ``until_empty``, until nothing is due)."""
        started = time.monotonic()
        recording: asyncio.Task[None] | None = None
        batch: list[Claimed] = []
        keeper = asyncio.ensure_future(self._keep_leases())
        try:
            while not stop.is_set():
                if self.breaker.is_open and not self.breaker.probing:
                    if batch:
                        await self._give_back([c.id for c in batch])
                        batch = []
                    if until_empty:
                        # A drain sends what can go now; a failing server waits for the
                        # regular worker, which keeps probing it.
                        log.warning("the mail server keeps failing; stopping this run")
                        break
                    wait = self.breaker.wait()
                    if wait > 0:
                        log.warning("breaker open: pausing %.0fs before a probe", wait)
                        await _sleep_or_stop(stop, wait)
                        continue
                    self.breaker.start_probe()
                    batch = await self._claim(1, until_empty)
                elif not batch:
                    batch = await self._claim(self.batch_size, until_empty)
                if not batch:
                    if until_empty:
                        break
                    await _sleep_or_stop(stop, POLL_SECONDS)
                    continue
                t0 = time.monotonic()
                sending = asyncio.ensure_future(self.send_batch(batch, stop))
                # Claim the next batch while this one is on the wire (not while probing).
                prefetch = None
                if not self.breaker.is_open and not stop.is_set():
                    prefetch = asyncio.ensure_future(self._claim(self.batch_size, until_empty))
                sent = await sending
                if recording is not None:
                    await recording
                recording = asyncio.ensure_future(self._finish(sent, t0))
                batch = await prefetch if prefetch is not None else []
            if batch:
                await self._give_back([c.id for c in batch])
        finally:
            keeper.cancel()
            if recording is not None:
                await recording
            if self._signing is not None:
                self._signing.shutdown(wait=False)
                self._signing = None
            self.tally.seconds += time.monotonic() - started
        return self.tally

    async def _keep_leases(self) -> None:
        # A batch on a slow server can outlast a lease; renewing at a third of it keeps
        # another worker from taking (and sending) what we are still sending.
        period = max(1.0, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(period)
            try:
                await self.store.keep_alive()
            except DigestError as exc:
                log.warning("could not extend leases: %s", exc)

    async def _claim(self, limit: int, until_empty: bool) -> list[Claimed]:
        try:
            return await self.store.claim(limit)
        except StoreUnavailable as exc:
            if until_empty:
                raise
            # A long-running worker outlives a database restart: wait and claim again.
            log.warning("%s; retrying", exc)
            await asyncio.sleep(STORE_RETRY_SECONDS)
            return []

    async def _give_back(self, ids: list[int]) -> None:
        await self.store.give_back(ids)
        self.tally.given_back += len(ids)

    async def _finish(self, sent: BatchResult, t0: float) -> None:
        outcomes, untried = sent.outcomes, sent.untried
        for wait in (1, 2, 4, 8, 0):
            # Outcomes not written mean mail sent again once the leases run out: insist.
            try:
                await self.store.record(outcomes[sent.recorded :])
                break
            except StoreUnavailable as exc:
                if not wait:
                    raise
                log.warning("%s; writing outcomes again in %ds", exc, wait)
                await asyncio.sleep(wait)
        if untried:
            await self._give_back(untried)
        counts = Counter(o.status for o in outcomes)
        self.tally.counts.update(counts)
        self.tally.batches += 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing sent"
        extra = f", {len(untried)} given back" if untried else ""
        log.info(
            "batch of %d: %s%s in %.2fs",
            len(outcomes) + len(untried),
            summary,
            extra,
            time.monotonic() - t0,
        )


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
