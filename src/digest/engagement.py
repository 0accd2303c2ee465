"""The engagement reports as the faces ask for them (``digest stats``, ``/api/stats/...``,
the desk): the latest mails' figures with their totals and the newsletters' days, or one
mail's; and the hook that counts pending clicks first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from digest import clicks, newsletters
from digest.config import Settings
from digest.db import Database
from digest.engagement_days import days
from digest.engagement_report import DayReport, MailReport, totals
from digest.engagement_store import latest, one, reports


@dataclass(frozen=True)
class Overview:
    """The latest mails' figures, their totals, and the newsletters' days."""

    mails: list[MailReport]
    days: list[DayReport]
    newsletter: str = ""  # the newsletter's slug as it is now; "": every newsletter

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: ``editions`` (every kind of mail, each with its ``kind``),
        ``totals`` (the contract's figures summed over them) and ``days``."""
        return {
            "editions": [m.as_dict() for m in self.mails],
            "totals": totals(self.mails),
            "days": [d.as_dict() for d in self.days],
        }


def overview(
    session: Session,
    *,
    newsletter: str | None,
    today: date,
    limit: int = 20,
    span: int = 14,
) -> Overview:
    """The ``limit`` latest mails of the newsletter ``newsletter`` names (or of all) with
    their figures, and the last ``span`` days of its readers (or every live newsletter's);
    NewsletterNotFound for a slug that names none."""
    chosen = newsletters.get(session, newsletter) if newsletter else None
    newsletter_id = int(chosen.id or 0) if chosen else None
    heads = latest(session, newsletter_id=newsletter_id, limit=limit)
    return Overview(
        reports(session, heads),
        days(session, today=today, span=span, newsletter_id=newsletter_id),
        chosen.slug if chosen else "",
    )


def mail_report(session: Session, kind: str, mail_id: int) -> MailReport:
    """One mail's figures; NotFound when there is no such mail."""
    return reports(session, [one(session, kind, mail_id)])[0]


def fold_pending_clicks(db: Database, settings: Settings, now: datetime) -> None:
    """Count the clicks still waiting in ``click_events`` before a report reads the counts,
    so a click shows at once: the one hook the faces call. A click within the last seconds of
    a copy may still wait (its burst is not over); the web process folds it moments later."""
    clicks.fold(db, settings, now)
