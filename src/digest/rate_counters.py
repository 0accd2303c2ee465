"""Request counters kept in the store, so a per-client limit holds across processes and hosts.

Each web process counting in its own memory lets N processes allow N times the limit. Here the
count of a key lives in one row per fixed window (``slot``: epoch seconds // window), bumped
by one atomic statement per request: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE hits <
limit RETURNING hits``. No row comes back once the window is full, so a refused request is not
counted, as in the in-process sliding window. A fixed window can let up to twice the limit
through around its boundary; that is the price of one small statement per request.

Used on PostgreSQL; on SQLite (one machine, usually one process) the web app keeps its
in-process window and spares the single writer a write per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from digest.db import Database
from digest.errors import StoreUnavailable, first_line
from digest.models import RateHit

H = RateHit.__table__  # type: ignore[attr-defined]


class StoreCounter:
    """At most ``limit`` hits per key in each ``window``-second slot, counted in the store."""

    def __init__(
        self,
        db: Database,
        limit: int,
        window: int,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or window < 1:
            raise ValueError("limit and window must be at least 1")
        self.db = db
        self.limit = limit
        self.window = window
        self.prefix = prefix
        self._clock = clock
        insert = pg_insert if db.dialect == "postgresql" else sqlite_insert
        new = insert(H).values(key=sa.bindparam("k"), slot=sa.bindparam("s"), hits=1)
        self._bump = new.on_conflict_do_update(
            index_elements=[H.c.key, H.c.slot],
            set_={"hits": H.c.hits + 1},
            where=H.c.hits < sa.bindparam("limit"),
        ).returning(H.c.hits)
        self._count = sa.select(H.c.hits).where(
            H.c.key == sa.bindparam("k"), H.c.slot == sa.bindparam("s")
        )
        self._uncount = (
            sa.update(H)
            .where(H.c.key == sa.bindparam("k"), H.c.slot == sa.bindparam("s"), H.c.hits > 0)
            .values(hits=H.c.hits - 1)
        )
        self._forget = sa.delete(H).where(H.c.slot < sa.bindparam("before"))
        # A count lost in a crash costs nothing, so the commit need not wait for the disk:
        # waiting for the flush made each count about 8x slower (3.9 ms against 0.5 ms).
        self._durable_off = (
            sa.text("SET LOCAL synchronous_commit TO OFF") if db.dialect == "postgresql" else None
        )
        self._swept = -1  # the last slot this process cleared old rows for
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one request for ``key``: None when allowed, else seconds until the next slot."""
        now = self._clock()
        slot = int(now // self.window)
        params = {"k": f"{self.prefix}{key}"[:64], "s": slot, "limit": self.limit}
        try:
            # A bare connection, not a Session: a quarter of a millisecond less per request.
            with self.db.engine.begin() as conn:
                if self._durable_off is not None:
                    conn.execute(self._durable_off)
                counted = conn.execute(self._bump, params).first()
                if self._first_in(slot):
                    # Rows of past windows are of no use; each process clears them once a slot.
                    conn.execute(self._forget, {"before": slot})
        except OperationalError as exc:
            # A 503, as for any request's work when the database does not answer.
            raise StoreUnavailable(
                f"cannot use the database: {first_line(exc.orig or exc)}"
            ) from exc
        if counted is not None:
            return None
        return max(1, math.ceil((slot + 1) * self.window - now))

    def peek(self, key: str) -> int | None:
        """Like ``hit`` without counting: None while ``key`` is under its limit, else seconds
        until the next slot (a login limit counts failures only, but checks before each try)."""
        now = self._clock()
        slot = int(now // self.window)
        try:
            with self.db.engine.connect() as conn:
                hits = conn.execute(self._count, {"k": f"{self.prefix}{key}"[:64], "s": slot})
                counted = hits.scalar()
        except OperationalError as exc:
            raise StoreUnavailable(
                f"cannot use the database: {first_line(exc.orig or exc)}"
            ) from exc
        if counted is None or counted < self.limit:
            return None
        return max(1, math.ceil((slot + 1) * self.window - now))

    def give_back(self, key: str) -> None:
        """Uncount one hit of ``key`` in the current slot (a sign-in counted before checking
        it, that succeeded; past the slot's end there is nothing left to give back)."""
        slot = int(self._clock() // self.window)
        try:
            with self.db.engine.begin() as conn:
                conn.execute(self._uncount, {"k": f"{self.prefix}{key}"[:64], "s": slot})
        except OperationalError as exc:
            raise StoreUnavailable(
                f"cannot use the database: {first_line(exc.orig or exc)}"
            ) from exc

    def _first_in(self, slot: int) -> bool:
        with self._lock:
            first, self._swept = self._swept != slot, slot
        return first
