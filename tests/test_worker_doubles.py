"""The sending loop against its two protocols, with in-memory doubles for the store and the mail
server: what the worker does with what it claims, whatever database or SMTP is behind them.

The end-to-end tests (test_worker.py, test_crash.py) prove the same rules on real stores and a
real SMTP server; these pin the loop's own part of them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from digest.clock import utcnow
from digest.config import Settings
from digest.delivery.outcomes import Claimed, Outcome
from digest.delivery.replies import Stage
from digest.delivery.throttle import Breaker
from digest.delivery.transport import Result
from digest.delivery.worker import Worker
from digest.mail.content import MailContent
from digest.states import DeliveryKind, DeliveryStatus

QUEUED = DeliveryStatus.QUEUED.value
SENDING = DeliveryStatus.SENDING.value
DEFERRED = DeliveryStatus.DEFERRED.value
SENT = DeliveryStatus.SENT.value


@dataclass
class Row:
    """One outbox row as the memory store keeps it."""

    id: int
    kind: str
    subscriber_id: int | None
    to_email: str
    body_id: int | None
    status: str = QUEUED
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    created_at: datetime = field(default_factory=utcnow)
    leased: bool = False
    last_reply: str = ""
    send_by: datetime | None = None

    @property
    def message_id(self) -> str:
        return f"<row{self.id}@example.org>"


class MemoryStore:
    """The worker's ``Store`` over a dict of rows, with a clock of its own."""

    def __init__(self, bodies: dict[int, MailContent]) -> None:
        self.rows: dict[int, Row] = {}
        self.contents = bodies
        self.now = utcnow()
        self.recorded: list[Outcome] = []
        self.bodies_asked: list[list[int]] = []

    def add(self, kind: str, to_email: str, body_id: int | None, subscriber: int | None) -> Row:
        row = Row(len(self.rows) + 1, kind, subscriber, to_email, body_id, next_attempt_at=self.now)
        self.rows[row.id] = row
        return row

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows.values())

    async def claim(self, limit: int) -> list[Claimed]:
        due = [
            r
            for r in self.rows.values()
            if r.status in (QUEUED, DEFERRED) and r.next_attempt_at <= self.now
        ][:limit]
        for r in due:
            r.status, r.leased = SENDING, True
        return [
            Claimed(
                r.id,
                r.kind,
                r.subscriber_id,
                r.to_email,
                "",
                r.body_id,
                r.message_id,
                r.attempts,
                r.created_at,
                None,
                r.send_by,
            )
            for r in due
        ]

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        for o in outcomes:
            row = self.rows[o.delivery_id]
            if not row.leased:
                continue  # not ours any more: the outcome is dropped, as the outbox does
            row.status, row.leased, row.last_reply = o.status, False, o.reply
            row.attempts += 1
            if o.next_attempt_at is not None:
                row.next_attempt_at = o.next_attempt_at
            self.recorded.append(o)

    async def give_back(self, ids: Sequence[int]) -> None:
        for i in ids:
            row = self.rows[i]
            if row.leased:
                row.status, row.leased = (DEFERRED if row.attempts else QUEUED), False

    async def bodies(self, ids: Sequence[int]) -> dict[int, MailContent]:
        self.bodies_asked.append(list(ids))
        return {i: self.contents[i] for i in ids if i in self.contents}

    async def keep_alive(self) -> None:
        return None


@dataclass
class Sent:
    rcpt: str
    data: bytes


class MemoryTransport:
    """The worker's ``Transport``: answers from a script per recipient, 250 when none is left."""

    def __init__(
        self,
        script: dict[str, list[Result]] | None = None,
        *,
        default: Result | None = None,
        on_send: Callable[[int], None] | None = None,
    ) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default or Result(250, "2.0.0 OK", Stage.DATA)
        self.on_send = on_send
        self.sent: list[Sent] = []
        self.closed = False

    async def send(self, envelope_from: str, rcpt: str, data: bytes) -> Result:
        self.sent.append(Sent(rcpt, data))
        if self.on_send is not None:
            self.on_send(len(self.sent))
        await asyncio.sleep(0)  # a real server answers later: let the other lanes run
        replies = self.script.get(rcpt)
        return replies.pop(0) if replies else self.default

    async def close(self) -> None:
        self.closed = True

    def count(self, rcpt: str) -> int:
        return sum(s.rcpt == rcpt for s in self.sent)


SHARED = MailContent("News", "Hello %%NAME%%, the news.", "<p>Hello %%NAME%%, the news.</p>")


def edition(n: int, *, transactional: int = 0) -> MemoryStore:
    """``n`` digests sharing body 1, and ``transactional`` confirmations with a body each."""
    store = MemoryStore({1: SHARED})
    for i in range(n):
        store.add(DeliveryKind.DIGEST.value, f"p{i}@example.org", 1, i + 1)
    for i in range(transactional):
        body_id = 100 + i
        store.contents[body_id] = MailContent(f"Confirm {i}", f"Click {i}", f"<p>Click {i}</p>")
        store.add(DeliveryKind.CONFIRM.value, f"new{i}@example.org", body_id, None)
    return store


def run(
    settings: Settings,
    store: MemoryStore,
    transport: MemoryTransport,
    *,
    stop: asyncio.Event | None = None,
    until_empty: bool = True,
    **options: Any,
) -> Worker:
    worker = Worker(settings, store, transport, **options)
    asyncio.run(worker.run(stop or asyncio.Event(), until_empty=until_empty))
    return worker


def test_every_claimed_message_is_sent_once_and_recorded_sent(
    make_settings: Callable[..., Settings],
) -> None:
    store, transport = edition(30, transactional=2), MemoryTransport()
    worker = run(make_settings(), store, transport, batch_size=7, concurrency=3)
    assert sorted(s.rcpt for s in transport.sent) == sorted(r.to_email for r in store.rows.values())
    assert all(r.status == SENT and r.attempts == 1 for r in store.rows.values())
    assert worker.tally.counts == Counter({SENT: 32})
    # Each message carries its own row's Message-ID, so a repeat after a crash keeps it.
    by_rcpt = {s.rcpt: s.data for s in transport.sent}
    for row in store.rows.values():
        assert f"Message-ID: {row.message_id}".encode() in by_rcpt[row.to_email]


def test_a_4xx_is_deferred_and_tried_again_and_a_5xx_bounces_for_good(
    make_settings: Callable[..., Settings],
) -> None:
    store = edition(3)
    later, unknown = "p0@example.org", "p1@example.org"
    transport = MemoryTransport(
        {
            later: [Result(451, "4.3.0 try later", Stage.RCPT)],
            unknown: [Result(550, "5.1.1 user unknown", Stage.RCPT)],
        }
    )
    settings = make_settings()
    run(settings, store, transport)
    rows = {r.to_email: r for r in store.rows.values()}
    assert rows[later].status == DEFERRED and rows[later].attempts == 1
    assert rows[later].next_attempt_at > store.now and rows[later].last_reply.startswith("451")
    assert rows[unknown].status == DeliveryStatus.BOUNCED.value
    (bounce,) = [o for o in store.recorded if o.delivery_id == rows[unknown].id]
    assert bounce.hard_bounce and bounce.to_email == unknown and bounce.subscriber_id == 2
    assert rows["p2@example.org"].status == SENT
    # Nothing is due until the deferred row's time comes; then only it goes again.
    run(settings, store, transport)
    assert transport.count(later) == 1
    store.now = rows[later].next_attempt_at
    run(settings, store, transport)
    assert rows[later].status == SENT and rows[later].attempts == 2
    assert transport.count(later) == 2 and transport.count(unknown) == 1
    assert transport.count("p2@example.org") == 1


def test_on_shutdown_untried_messages_go_back_to_the_queue_unsent(
    make_settings: Callable[..., Settings],
) -> None:
    store = edition(10)
    stop = asyncio.Event()

    def stop_at_third(n: int) -> None:
        if n == 3:
            stop.set()

    transport = MemoryTransport(on_send=stop_at_third)
    worker = run(
        make_settings(), store, transport, stop=stop, until_empty=False, batch_size=5, concurrency=1
    )
    # What was on the wire finishes and is recorded; nothing else went, nothing stays leased.
    assert len(transport.sent) == 3 and store.count(SENT) == 3
    assert store.count(QUEUED) == 7 and store.count(SENDING) == 0
    assert all(r.attempts == 0 for r in store.rows.values() if r.status == QUEUED)
    assert worker.tally.given_back == 7


def test_the_breaker_stops_sending_to_a_failing_server(
    make_settings: Callable[..., Settings],
) -> None:
    store = edition(50)
    transport = MemoryTransport(default=Result(421, "4.3.2 shutting down", Stage.RCPT))
    breaker = Breaker(threshold=3, cooldown=3600)
    run(make_settings(), store, transport, batch_size=10, concurrency=1, breaker=breaker)
    # Three tries, not fifty: the rest wait in the queue for the server to come back.
    assert breaker.trips == 1 and len(transport.sent) == 3
    assert store.count(DEFERRED) == 3 and store.count(QUEUED) == 47
    assert store.count(SENDING) == 0


def test_a_shared_body_is_fetched_once_for_every_batch_that_uses_it(
    make_settings: Callable[..., Settings],
) -> None:
    store, transport = edition(40, transactional=3), MemoryTransport()
    run(make_settings(), store, transport, batch_size=8, concurrency=2)
    asked = [i for ids in store.bodies_asked for i in ids]
    assert Counter(asked) == Counter({1: 1, 100: 1, 101: 1, 102: 1})
    assert len(transport.sent) == 43
    digests = [s.data for s in transport.sent if s.rcpt.startswith("p")]
    assert all(b"Subject: News" in d and b"the news." in d for d in digests)


def test_a_message_that_cannot_be_built_fails_without_reaching_the_server(
    make_settings: Callable[..., Settings],
) -> None:
    store = edition(2)
    orphan = store.add(DeliveryKind.CONFIRM.value, "lost@example.org", 999, None)
    transport = MemoryTransport()
    run(make_settings(), store, transport)
    assert orphan.status == DeliveryStatus.FAILED.value
    assert "its body is missing" in orphan.last_reply
    assert transport.count("lost@example.org") == 0 and store.count(SENT) == 2


def test_a_row_whose_send_by_time_passes_while_it_waits_in_the_batch_is_not_sent(
    make_settings: Callable[..., Settings],
) -> None:
    """Claimed in time, its turn came after its send-by time (quiet hours began, a slow
    server): skipped, never put on the wire; the rest of the batch goes."""
    store, transport = edition(3), MemoryTransport()
    late = store.rows[2]
    late.send_by = utcnow() + timedelta(milliseconds=50)

    def slow(n: int) -> None:
        if n == 1:
            time.sleep(0.1)  # the first send outlasts the second row's send-by time

    transport.on_send = slow
    run(make_settings(), store, transport, concurrency=1)
    assert sorted(s.rcpt for s in transport.sent) == ["p0@example.org", "p2@example.org"]
    assert late.status == DeliveryStatus.SKIPPED.value
    assert late.last_reply.startswith("past its send-by time")
