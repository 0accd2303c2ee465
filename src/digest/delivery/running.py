"""A delivery worker made from the settings and run: the transport ``DIGEST_SMTP_URL`` names, the
outbox in the store, and the loop of ``worker.py`` over both, until stopped or the queue is empty.

``digest worker``, ``digest serve``, ``digest send`` and the tests start workers through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from digest.config import Settings
from digest.db import Database
from digest.delivery.esp_targets import is_esp_url, parse_esp_url
from digest.delivery.files import FileTransport
from digest.delivery.smtp import SmtpPool
from digest.delivery.store import SqlStore, reclaim_dead_local_leases, worker_id
from digest.delivery.transport import Transport
from digest.delivery.worker import BATCH_SIZE, Tally, Worker
from digest.webhook_sender import WebhookSender

log = logging.getLogger(__name__)

T = TypeVar("T")


def transport_from_settings(settings: Settings) -> Transport:
    """The transport ``DIGEST_SMTP_URL`` names: an SMTP pool, a folder of .eml files, or an
    email service's API (SES, Postmark, Mailgun) over as many connections as SMTP would use."""
    folder = settings.file_outbox
    if folder is not None:
        return FileTransport(folder)
    if is_esp_url(settings.smtp_url):
        # Imported here: aiohttp and botocore take half a second to import, which every
        # command that may send (send, worker, serve) would pay for SMTP too.
        from digest.delivery.mailgun import mailgun_transport
        from digest.delivery.postmark import postmark_transport
        from digest.delivery.ses import ses_transport

        target = parse_esp_url(settings.smtp_url)
        make = {"ses": ses_transport, "postmark": postmark_transport}.get(
            target.service, mailgun_transport
        )
        return make(target, connections=settings.smtp_connections, timeout=settings.smtp_timeout)
    return SmtpPool.from_settings(settings)


async def run_worker(
    settings: Settings,
    db: Database,
    stop: asyncio.Event,
    *,
    until_empty: bool = False,
    batch_size: int = BATCH_SIZE,
) -> Tally:
    """Run one delivery worker until ``stop`` is set; unsent leases are given back on exit."""
    owner = worker_id()
    reclaimed = await asyncio.to_thread(reclaim_dead_local_leases, db)
    if reclaimed:
        log.info("took back %d leases of stopped workers on this host", reclaimed)
    store = SqlStore(
        db,
        owner=owner,
        lease=timedelta(seconds=settings.lease_seconds),
        soft_bounce_limit=settings.soft_bounce_limit,
    )
    transport = transport_from_settings(settings)
    worker = Worker(settings, store, transport, batch_size=batch_size)
    # The webhook sender rides along as a task of its own: its receivers never slow the mail.
    webhooks = WebhookSender(settings, db)
    beside = None if until_empty else asyncio.ensure_future(webhooks.run(stop))
    try:
        tally = await worker.run(stop, until_empty=until_empty)
        if until_empty:
            # After the mail: an edition it finished is reported in the same run.
            await webhooks.drain()
        return tally
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(transport.close(), timeout=5)
        if beside is not None:
            if not stop.is_set():
                beside.cancel()  # the worker failed: the service stops, the sender with it
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(beside, timeout=5)


@dataclass(frozen=True)
class DrainReport:
    """What a run until the queue is empty did."""

    sent: int
    deferred: int
    bounced: int
    failed: int
    seconds: float


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (it comes with uvicorn[standard]).

    uvloop roughly halves the event loop's cost per SMTP round trip, which is most of the
    worker's own time; the plain asyncio loop works the same, only slower.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def drain(settings: Settings, db: Database) -> DrainReport:
    """Send everything due now, then return (``digest send`` and tests use this)."""
    tally = run_async(run_worker(settings, db, asyncio.Event(), until_empty=True))
    c = tally.counts
    return DrainReport(c["sent"], c["deferred"], c["bounced"], c["failed"], tally.seconds)
