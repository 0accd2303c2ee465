"""One writer thread that commits subscribe requests in small batches (group commit).

Each request's work runs in a savepoint of a shared transaction, so one bad request undoes
only itself, and nobody is told "done" before the commit that holds their row. Under load the
commit, the session and the SQLite write lock are paid once per batch instead of once per
request, and the ORM work runs on one thread instead of fighting over the GIL and the
database's single write lock from forty.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from digest.db import Database
from digest.errors import DigestError

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = tuple[Callable[[Session], Any], "Future[Any]"]

MAX_BATCH = 64
_STOP = object()


class BatchWriter:
    """Runs ``job(session)`` calls on one thread, many per transaction, each in a savepoint."""

    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, job: Callable[[Session], T]) -> T:
        """Run ``job`` in the next batch and return its result once that batch is committed."""
        future: Future[T] = Future()
        self._ensure_started()
        self._queue.put((job, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Finish the queued work and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=30)

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            # Started on first use (not at import or app creation), and again should it die.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="digest-web-writer", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[Job] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[Job]) -> None:
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.db.transaction() as session:
                for job, future in batch:
                    if future.set_running_or_notify_cancel():
                        results.append((future, *_run_one(session, job)))
        except BaseException as exc:  # the commit itself failed: nobody's work was kept
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, value, error in results:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)


def _run_one(session: Session, job: Callable[[Session], Any]) -> tuple[Any, Exception | None]:
    """Run one job in a savepoint; its own failure is returned, not raised."""
    # A unique address inserted by another process since this job looked: the savepoint is
    # undone, and the job runs once more and finds that row.
    for attempt in range(2):
        try:
            with session.begin_nested():
                return job(session), None
        except IntegrityError as exc:
            if attempt:
                return None, exc
        except OperationalError:
            raise  # the database itself is gone: the whole batch fails (503)
        except Exception as exc:
            # This request's own problem (bad input, a bug it alone triggers): undo its
            # savepoint and answer it alone, never the other requests of the batch.
            if not isinstance(exc, DigestError):
                log.exception("subscribe request failed")
            return None, exc
    return None, None  # unreachable: the loop always returns
