"""The tracking mode mail is made under, and since when (``tracking_state``, one row).

The scheduler's digest tick and every list hygiene pass note ``DIGEST_TRACKING``; when it
differs from the stored mode, ``since`` moves to now. List hygiene judges readers only over
weeks wholly under per-reader tracking (``per_reader_since``): a reader's silence before then
says nothing, their clicks were not kept per reader.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest.db import dialect_insert
from digest.models import TrackingState
from digest.tracking import TrackingMode

T = TrackingState.__table__  # type: ignore[attr-defined]
ROW = 1


def note(session: Session, mode: TrackingMode, now: datetime) -> None:
    """Record that mail is made under ``mode`` at ``now``: one primary-key read, and a write
    only when the mode changed (or was never noted). Two processes noting at once agree: the
    upsert moves ``since`` only where the stored mode still differs."""
    stored = session.execute(sa.select(T.c.mode).where(T.c.id == ROW)).scalar_one_or_none()
    if stored == mode.value:
        return
    insert = dialect_insert(session)(T).values(id=ROW, mode=mode.value, since=now)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[T.c.id],
            set_={"mode": mode.value, "since": now},
            where=T.c.mode != mode.value,
        )
    )


def per_reader_since(session: Session) -> datetime | None:
    """Since when mail has been made under per-reader tracking; None unless it is now."""
    row = session.execute(sa.select(T.c.mode, T.c.since).where(T.c.id == ROW)).first()
    if row is None or row.mode != TrackingMode.PER_READER.value:
        return None
    return row.since  # type: ignore[no-any-return]
