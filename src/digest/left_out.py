"""Why an active reader gets nothing from an edition, counted: for ``digest send`` and its dry
run, which say who was left out and why besides "nothing new" (the skipped)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest.newsletter_config import NewsletterConfig
from digest.periods import is_due
from digest.planning import READERS, S, active_readers, due_slots, slot_filter

#: Why an active reader gets nothing from an edition, besides "nothing new" (the skipped).
ALREADY_HAD = "already had this period's digest"
NOT_DUE = "their local send hour has not come"
JOINED_LATE = "became active after their send hour: first digest at the next one"


def left_out(
    session: Session,
    newsletter: NewsletterConfig,
    *,
    cadence: str,
    now: datetime,
    due_only: bool,
) -> dict[str, int]:
    """How many active readers of ``cadence`` an edition at ``now`` leaves out, by reason."""
    counts = dict.fromkeys((ALREADY_HAD, NOT_DUE, JOINED_LATE), 0)
    nid = newsletter.id
    for tz, hour, period in due_slots(session, newsletter, cadence, now, due_only=False):
        without = slot_filter(nid, cadence, tz, hour, period)
        eligible = slot_filter(nid, cadence, tz, hour, period, scheduled=True)
        total, pending, on_time = session.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(sa.case((without, 1), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((eligible, 1), else_=0)), 0),
            )
            .select_from(READERS)
            .where(active_readers(nid, cadence), S.c.timezone == tz, S.c.send_hour == hour)
        ).one()
        counts[ALREADY_HAD] += total - pending
        if due_only and not is_due(period, now):
            counts[NOT_DUE] += pending
        elif due_only:
            counts[JOINED_LATE] += pending - on_time
    return counts
