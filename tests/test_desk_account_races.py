"""Two desk requests at once on one account: a second-factor code is still accepted once, and
two owners demoting or removing each other still leave an owner. Both stores: PostgreSQL's
transactions overlap (read committed), SQLite's hold the write lock from their start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pyotp
import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest import desk_accounts, desk_totp
from digest.audit import Actor
from digest.db import Database
from digest.errors import LastOwner
from digest.models import DeskUser
from digest.roles import Role
from tests.support.desk import make_user

ANN = "ann@newsroom.example"
BOB = "bob@newsroom.example"
EDITOR = "editor@newsroom.example"
NOW = datetime(2026, 3, 2, 9, 7, 10, tzinfo=UTC)
ACTOR = Actor("cli", "test")


def test_a_code_read_by_two_overlapping_sign_ins_is_accepted_once(db: Database) -> None:
    make_user(db, ANN, "owner")
    secret = pyotp.random_base32()
    with db.transaction() as session:
        desk_accounts.get(session, ANN).totp_secret = secret
    code = pyotp.TOTP(secret).at(NOW)
    with Session(db.engine) as first, Session(db.engine) as second:
        user = desk_accounts.get(first, ANN)
        if db.dialect == "postgresql":
            # The second sign-in reads the account before the first one commits its step.
            late = desk_accounts.get(second, ANN)
            assert desk_totp.check(first, user, code, NOW)
            first.commit()
        else:
            # SQLite: the second transaction cannot start before the first one ends.
            assert desk_totp.check(first, user, code, NOW)
            first.commit()
            late = desk_accounts.get(second, ANN)
        assert not desk_totp.check(second, late, code, NOW)
        second.commit()
    with db.transaction() as session:
        assert desk_accounts.get(session, ANN).totp_last_step == int(NOW.timestamp()) // 30


def _waiting_on_a_lock(db: Database) -> bool:
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    with db.engine.connect() as conn:
        return bool(conn.execute(sa.text(query)).scalar())


Change = Callable[[Session, str], object]
CHANGES: dict[str, Change] = {
    "demote": lambda s, email: desk_accounts.set_role(s, ACTOR, email, "editor"),
    "remove": lambda s, email: desk_accounts.remove(s, ACTOR, email),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_two_owners_demoting_each_other_at_once_leave_one(db: Database, change: str) -> None:
    act = CHANGES[change]
    make_user(db, ANN, "owner")
    make_user(db, BOB, "owner")
    make_user(db, EDITOR, "editor")  # another account, so the last owner may not be removed
    outcome: list[object] = []

    def ann_acts() -> None:
        with Session(db.engine) as session:
            try:
                act(session, BOB)
                session.commit()
                outcome.append("done")
            except LastOwner as exc:
                session.rollback()
                outcome.append(exc)

    with Session(db.engine) as bob:
        act(bob, ANN)  # Bob's change, not committed yet
        bob.flush()
        other = threading.Thread(target=ann_acts)
        other.start()
        if db.dialect == "postgresql":
            # Until Ann's change waits for Bob's locks, or ends without waiting (unlocked code).
            for _ in range(400):
                other.join(0.05)
                if not other.is_alive() or _waiting_on_a_lock(db):
                    break
        # SQLite: Ann's transaction waits for the write lock Bob's holds from its start.
        bob.commit()
    other.join(60)
    assert not other.is_alive()
    with db.transaction() as session:
        owners = session.exec(select(DeskUser).where(col(DeskUser.role) == Role.OWNER)).all()
        assert [o.email for o in owners] == [BOB]
    assert len(outcome) == 1 and isinstance(outcome[0], LastOwner)
    assert "needs an owner" in str(outcome[0])
