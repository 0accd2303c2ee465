"""The next editions as the desk's Today page lists them: each slot of active readers
(newsletter, cadence, zone, send hour) with the next time its send hour comes round.

Read from the counts the store keeps (``list_counts.slots``), so the list costs the same at a
million readers as at ten thousand. ``schedule.next_runs`` (``digest status``) answers the
finer question of whether a slot still waits for the current period's digest, by looking at
its readers' outbox rows; this one only reads the clock: a slot whose hour has passed today
shows its next one.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from digest import list_counts, newsletters
from digest.config import Settings
from digest.newsletter_config import configure
from digest.periods import period_for
from digest.schedule import NextRun


def next_editions(
    session: Session, settings: Settings, now: datetime, *, limit: int = 10
) -> list[NextRun]:
    """The ``limit`` soonest sends at or after ``now``, each with its number of readers."""
    configs = {n.id: configure(n, settings) for n in newsletters.listed(session)}
    runs = []
    for slot in list_counts.slots(session):
        config = configs.get(slot.newsletter_id)
        if config is None:  # an archived newsletter sends nothing
            continue
        day = config.weekly_day
        period = period_for(slot.cadence, slot.timezone, slot.send_hour, now, weekly_day=day)
        if period.due < now:
            period = period_for(
                slot.cadence, slot.timezone, slot.send_hour, period.end, weekly_day=day
            )
        runs.append(
            NextRun(
                period.due, slot.cadence, slot.timezone, slot.send_hour, slot.readers, config.slug
            )
        )
    return sorted(runs, key=lambda r: (r.at, r.newsletter, r.cadence, r.timezone))[:limit]
