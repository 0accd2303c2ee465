"""Clicks recorded off the request path: a bounded buffer and one thread that empties it.

A redirect only appends its event to the buffer and answers; the thread inserts what the
buffer holds about once a second (one transaction per batch, as ``writer.py`` does for
subscribe requests), then folds whatever has settled into the counts (``clicks.fold``), and
keeps folding every second while events wait. A full buffer (the store down or far behind)
drops new events and counts them (``dropped``): a reader's redirect never waits on the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from digest import clicks
from digest.config import Settings
from digest.db import Database
from digest.errors import StoreUnavailable

log = logging.getLogger(__name__)

#: Seconds between two inserts of the buffer (and two folds while events wait).
FLUSH_SECONDS = 1.0
#: Events held at most: a minute of a thousand clicks a second, some MB of memory.
MAX_BUFFER = 60_000


class ClickRecorder:
    """The buffer of click events of one web process, and the thread that stores them."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        max_buffer: int = MAX_BUFFER,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.settings = settings
        self.max_buffer = max_buffer
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.dropped = 0  # since the process started
        self._dropped_told = 0
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, event: dict[str, Any]) -> None:
        """Queue one event (a ``click_events`` row without its id); never blocks on the store."""
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                self.dropped += 1
                return
            self._buffer.append(event)
        if not self._wake.is_set():
            self._wake.set()
        if self._thread is None or not self._thread.is_alive():
            self.start()

    def now(self) -> datetime:
        """The time a request is stamped with."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def start(self) -> None:
        """Start the thread (once; again should it have died); it folds what waits at once."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._wake.set()  # events left by an earlier run are folded too
            self._thread = threading.Thread(target=self._loop, name="digest-clicks", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Store what is buffered, fold what has settled, and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout=30)

    def _loop(self) -> None:
        waiting = 0
        while True:
            if not waiting:
                self._wake.wait()
            self._stop.wait(self.flush_seconds)  # gather a second's worth
            self._wake.clear()
            stored = self._flush()
            try:
                waiting = clicks.fold(self.db, self.settings, self.now()).waiting
            except StoreUnavailable as exc:
                log.warning("click counts not updated: %s", exc)
                waiting = 1
            except Exception:
                log.exception("folding clicks failed")
                waiting = 1
            if self._stop.is_set():
                return  # events the store refuses now are lost with the process (logged)
            with self._lock:
                pending = bool(self._buffer)
            waiting = waiting or int(pending) or int(not stored)

    def _flush(self) -> bool:
        """Insert the buffer in one transaction; False when the store refused it for now."""
        with self._lock:
            batch, self._buffer = self._buffer, []
            dropped, self._dropped_told = self.dropped - self._dropped_told, self.dropped
        if dropped:
            log.warning("%d clicks not recorded: the store is behind", dropped)
        if not batch:
            return True
        try:
            clicks.record(self.db, batch)
        except StoreUnavailable as exc:
            log.warning("clicks kept in memory, the store is unavailable: %s", exc)
            with self._lock:  # back in front of the newer ones, within the bound
                self._buffer = (batch + self._buffer)[: self.max_buffer]
            return False
        return True
