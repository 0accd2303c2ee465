"""What the worker needs from the outbox, and the outbox in the database behind it.

``Store`` is the protocol the sending loop depends on; ``SqlStore`` runs each call as one
transaction in a thread so the event loop keeps the connections busy meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from digest import newsletters
from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.bounces import apply_refusals
from digest.delivery.outcomes import Claimed, Outcome
from digest.mail.content import MailContent
from digest.models import Newsletter


class Store(Protocol):
    """What the worker needs from the outbox."""

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries."""
        ...

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write what happened to leased deliveries."""
        ...

    async def give_back(self, ids: Sequence[int]) -> None:
        """Return leased deliveries that were not tried."""
        ...

    async def bodies(self, ids: Sequence[int]) -> dict[int, MailContent]:
        """The bodies with these ids."""
        ...

    async def keep_alive(self) -> None:
        """Extend the leases this worker holds."""
        ...

    async def newsletters(self) -> list[Newsletter]:
        """Every newsletter, for their From, Reply-To and List-Id."""
        ...


class SqlStore:
    """The outbox in the database, each call one transaction in a thread."""

    def __init__(
        self, db: Database, *, owner: str, lease: timedelta, soft_bounce_limit: int = 0
    ) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self.soft_bounce_limit = soft_bounce_limit

    def _claim(self, limit: int) -> list[Claimed]:
        with self.db.transaction() as session:
            return outbox.claim(session, owner=self.owner, limit=limit, lease=self.lease)

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        with self.db.transaction() as session:
            outbox.record(session, owner=self.owner, outcomes=outcomes)
            # In the same transaction: a refusal's row and its subscriber change together.
            apply_refusals(session, outcomes, self.soft_bounce_limit)

    def _give_back(self, ids: Sequence[int]) -> None:
        with self.db.transaction() as session:
            outbox.give_back(session, owner=self.owner, ids=ids)

    def _keep_alive(self) -> None:
        with self.db.transaction() as session:
            outbox.extend_leases(session, owner=self.owner, until=utcnow() + self.lease)

    def _newsletters(self) -> list[Newsletter]:
        with self.db.transaction() as session:
            found = list(newsletters.listed(session, archived=True))
            session.expunge_all()
            return found

    def _bodies(self, ids: Sequence[int]) -> dict[int, MailContent]:
        with self.db.transaction() as session:
            return outbox.bodies(session, ids)

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries."""
        return await asyncio.to_thread(self._claim, limit)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write outcomes (only where the lease is still ours)."""
        if outcomes:
            await asyncio.to_thread(self._record, outcomes)

    async def give_back(self, ids: Sequence[int]) -> None:
        """Return untried deliveries to the queue."""
        if ids:
            await asyncio.to_thread(self._give_back, ids)

    async def bodies(self, ids: Sequence[int]) -> dict[int, MailContent]:
        """Load bodies by id."""
        return await asyncio.to_thread(self._bodies, ids)

    async def keep_alive(self) -> None:
        """Extend our leases to a full lease from now."""
        await asyncio.to_thread(self._keep_alive)

    async def newsletters(self) -> list[Newsletter]:
        """Every newsletter, archived ones too (their mail may still be in the outbox)."""
        return await asyncio.to_thread(self._newsletters)


def worker_id() -> str:
    """``host:pid:nonce``: unique per process, and tells which host and process holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def reclaim_dead_local_leases(db: Database) -> int:
    """Take back leases held by worker processes of this host that no longer run.

    A worker killed outright leaves its rows leased until the lease runs out; on the same host
    we can tell at once that its process is gone, so a restart resumes without waiting.
    """
    host = socket.gethostname()
    with db.transaction() as session:
        dead = [o for o in outbox.lease_owners(session, f"{host}:") if not _alive(o)]
        return outbox.requeue_owners(session, dead)


def _alive(owner: str) -> bool:
    try:
        pid = int(owner.split(":")[1])
    except (IndexError, ValueError):
        return True  # not ours to judge: wait for the lease to run out
    if pid == os.getpid():
        return False  # an earlier incarnation with our pid cannot be us: our owner is new
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
