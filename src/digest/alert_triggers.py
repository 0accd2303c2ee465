"""Alerts raised by a feed category: on each scheduler tick, a newly arrived post in one of a
newsletter's alert categories (``DIGEST_ALERT_CATEGORIES`` or its own, e.g. "Breaking")
becomes that newsletter's alert.

Idempotent across ticks and processes: a post already alerted in a newsletter is not looked at
again, and two schedulers raising the same one at once end with one alert (its unique key;
the loser's ``AlreadyAlerted`` is expected and ignored). A post that arrived longer ago than
the newsletter's alert expiry is news no longer: it is left to the digest.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from digest import newsletters
from digest.alerts import AlertReport, raise_in
from digest.compose.select import normalize_topics
from digest.config import Settings
from digest.db import Database
from digest.errors import (
    AlertRefused,
    AlreadyAlerted,
    DigestError,
    StoreUnavailable,
    first_line,
)
from digest.models import Post
from digest.models_campaigns import Alert
from digest.newsletter_config import NewsletterConfig, configure

log = logging.getLogger(__name__)

A = Alert.__table__  # type: ignore[attr-defined]
P = Post.__table__  # type: ignore[attr-defined]


def breaking(session: Session, newsletter: NewsletterConfig, now: datetime) -> list[int]:
    """The ids of posts first seen within the newsletter's alert expiry before ``now``, in one
    of its alert categories (any case), and not yet alerted in it; oldest first."""
    wanted = {c.casefold() for c in newsletter.alert_categories}
    if not newsletter.alerts or not wanted:
        return []
    alerted = sa.exists().where(A.c.newsletter_id == newsletter.id, A.c.post_id == P.c.id)
    rows = session.execute(
        sa.select(P.c.id, P.c.categories, P.c.tags)
        .where(
            P.c.first_seen_at > now - newsletter.alert_expiry,
            P.c.first_seen_at <= now,
            ~alerted,
        )
        .order_by(P.c.first_seen_at, P.c.id)
    )
    # Categories are a JSON list; the few recent posts are matched here, alike on both stores.
    # A newsletter that draws on some topics alerts only posts of them ("Breaking" and
    # "Politics" is not news for the sport newsletter's readers).
    drawn = normalize_topics(newsletter.topics)
    found = []
    for pid, cats, tags in rows:
        names = {str(c).casefold() for c in cats or ()}
        topics = normalize_topics([*(cats or ()), *(tags or ())]) - wanted
        if wanted & names and (not drawn or drawn & topics):
            found.append(pid)
    return found


def raise_by_category(db: Database, settings: Settings, now: datetime) -> list[AlertReport]:
    """Raise every post due an alert by its category, each in its own transaction; the alerts
    raised. A refusal (nobody opted in yet) records nothing and is logged."""
    with db.transaction() as session:
        configs = [configure(n, settings) for n in newsletters.listed(session)]
        due = [(c, pid) for c in configs for pid in breaking(session, c, now)]
    reports = []
    for config, post_id in due:
        try:
            with db.transaction() as session:
                post = session.get(Post, post_id)
                if post is None:  # deleted since
                    continue
                report = raise_in(session, settings, config, post, source="category", now=now)
                reports.append(report)
        except AlreadyAlerted:
            continue  # another scheduler raised it first
        except AlertRefused as exc:
            # Tried again each tick until it expires (someone may opt in meanwhile): at info
            # level that would be a line a minute for hours.
            log.debug(
                "category alert not raised",
                extra={"newsletter": config.slug, "post": post_id, "reason": str(exc)},
            )
        except StoreUnavailable:
            raise
        except (DigestError, SQLAlchemyError) as exc:
            # One newsletter's broken alert template must not hold up the others' alerts.
            log.warning(
                "category alert failed",
                extra={"newsletter": config.slug, "post": post_id, "error": first_line(exc)},
            )
    return reports
