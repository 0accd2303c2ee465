"""Clicks summed per newsletter, for ``/metrics``: readers' clicks and machines' clicks, over
every mail ever tracked, from the per-link counts (a row per link of a mail, not per copy).

Aggregates only: no reader, no link, no mail is named, so a scrape tells nothing about anyone.
Each sum only grows as clicks are folded in, as a Prometheus counter must.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from digest.clicks import newsletters_of
from digest.models import Newsletter
from digest.models_engagement import LinkClick

N = Newsletter.__table__  # type: ignore[attr-defined]
LC = LinkClick.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ClickTotal:
    """One newsletter's clicks over all its tracked mail."""

    newsletter: str
    human: int
    machine: int


def click_totals(session: Session) -> list[ClickTotal]:
    """Every newsletter (in the order readers see them) with its clicks summed."""
    per_mail: dict[str, list[int]] = {}
    for mail, human, machine in session.execute(
        sa.select(LC.c.mail, sa.func.sum(LC.c.human), sa.func.sum(LC.c.machine)).group_by(LC.c.mail)
    ):
        per_mail[mail] = [int(human or 0), int(machine or 0)]
    owners = newsletters_of(session, set(per_mail))
    summed: dict[int, Counter[str]] = {}
    for mail, (human, machine) in per_mail.items():
        if mail in owners:
            summed.setdefault(owners[mail], Counter()).update({"human": human, "machine": machine})
    rows = session.execute(sa.select(N.c.id, N.c.slug).order_by(N.c.position, N.c.id))
    return [
        ClickTotal(slug, c["human"], c["machine"])
        for newsletter_id, slug in rows
        for c in [summed.get(newsletter_id, Counter())]
    ]
