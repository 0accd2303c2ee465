"""Desk sessions that ran out are cleared by the scheduler's housekeeping, not only when
their browser comes back: a stolen cookie of a session nobody uses stops existing."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from digest import desk_accounts, desk_sessions
from digest.audit import Actor
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.models import DeskSession
from digest.schedule import sweep_desk_sessions


def test_the_sweep_deletes_idle_and_expired_sessions_and_keeps_live_ones(
    db: Database, settings: Settings
) -> None:
    now = utcnow()
    idle = timedelta(minutes=settings.desk_idle_minutes)
    with db.transaction() as session:
        user = desk_accounts.add(
            session, Actor("cli", "t"), "ed@news.example", "editor", "a-long-desk-passphrase"
        )
        live = desk_sessions.open_session(
            session, user, now, lifetime=timedelta(hours=8), ip=None, user_agent=None
        )
        idle_one = desk_sessions.open_session(
            session, user, now - idle - timedelta(minutes=1), lifetime=timedelta(hours=8),
            ip=None, user_agent=None,
        )  # fmt: skip
        expired = desk_sessions.open_session(
            session, user, now - timedelta(hours=9), lifetime=timedelta(hours=8),
            ip=None, user_agent=None,
        )  # fmt: skip
        expired.row.last_seen_at = now  # busy, but past its absolute end
        session.add(expired.row)
    assert sweep_desk_sessions(db, settings, now) == 2
    with db.transaction() as session:
        left = {row.token_hash for row in session.exec(select(DeskSession)).all()}
        assert left == {live.row.token_hash}
        assert desk_sessions.lookup(session, idle_one.cookie, now, idle=idle) is None
        assert desk_sessions.lookup(session, live.cookie, now, idle=idle) is not None
