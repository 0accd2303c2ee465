"""Resetting a lost second factor: ``digest users totp-reset EMAIL`` and the owner's button at
/desk/users. The factor goes, the account's sessions end, the audit log says who did it, and
the person signs in again (enrolling anew if the desk requires it). Both stores."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime

import pyotp
import pytest
import time_machine
from sqlmodel import col, select

from digest import desk_accounts
from digest.audit import Actor
from digest.db import Database
from digest.models import AuditEntry, DeskUser
from tests.support.cli import run
from tests.support.desk import desk_client, make_user, sign_in
from tests.support.web import client, make_app

OWNER = "owner@newsroom.example"
EDITOR = "editor@newsroom.example"
T0 = datetime(2026, 3, 2, 9, 7, 10, tzinfo=UTC)


@pytest.fixture
def frozen():  # type: ignore[no-untyped-def]
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def give_factor(db: Database, email: str) -> None:
    with db.transaction() as session:
        desk_accounts.get(session, email).totp_secret = pyotp.random_base32()


def factor_of(db: Database, email: str) -> str | None:
    with db.transaction() as session:
        return desk_accounts.get(session, email).totp_secret


def resets(db: Database) -> list[AuditEntry]:
    with db.transaction() as session:
        rows = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "user.totp_reset")
        ).all()
        return [AuditEntry.model_validate(r) for r in rows]


async def test_owner_resets_a_lost_factor_and_ends_its_sessions(db, settings, frozen) -> None:
    app = make_app(settings, db)
    make_user(db, EDITOR, "editor")
    async with client(app, "198.51.100.4") as editor:
        assert (await sign_in(editor, EDITOR)).status_code == 303  # signed in, then lost it
        give_factor(db, EDITOR)
        http, csrf = await desk_client(app, db, "owner", OWNER)
        async with aclosing(http):
            page = await http.get("/desk/users")
            assert f"Reset second factor of {EDITOR}" in page.text
            assert f"Reset second factor of {OWNER}" not in page.text  # only where there is one
            done = await http.post(
                "/desk/users/totp-reset", data={"email": EDITOR, "csrf_token": csrf}
            )
            assert done.status_code == 303
            shown = await http.get(done.headers["location"])
            assert "second factor is removed" in shown.text
            nobody = await http.post(
                "/desk/users/totp-reset", data={"email": "no@newsroom.example", "csrf_token": csrf}
            )
            assert nobody.status_code == 404 and "No desk account" in nobody.text
        assert (await editor.get("/desk/")).status_code == 303  # its session ended
    assert factor_of(db, EDITOR) is None
    [entry] = resets(db)
    assert (entry.via, entry.actor, entry.target) == ("desk", OWNER, EDITOR)
    assert entry.before == {"totp": True} and entry.after["totp"] is False
    with db.transaction() as session:  # required now: the next sign-in enrols anew
        desk_accounts.set_require_totp(session, Actor("cli", "test"), True)
    async with client(app) as editor:
        answer = await sign_in(editor, EDITOR)
        assert answer.headers["location"].startswith("/desk/login/enrol")


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_only_owners_reset_a_factor(db, settings, role) -> None:
    make_user(db, OWNER, "owner")
    give_factor(db, OWNER)
    http, csrf = await desk_client(make_app(settings, db), db, role)
    async with aclosing(http):
        refused = await http.post(
            "/desk/users/totp-reset", data={"email": OWNER, "csrf_token": csrf}
        )
        assert refused.status_code == 403
    assert factor_of(db, OWNER) is not None
    assert resets(db) == []


def test_the_cli_resets_a_factor(cli_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    make_user(cli_env, EDITOR, "editor")
    give_factor(cli_env, EDITOR)
    with cli_env.transaction() as session:
        assert session.exec(select(DeskUser)).one().totp_secret
    done = run(capsys, "users", "totp-reset", EDITOR.upper())
    assert done.code == 0, done.err
    assert done.out.strip() == f"second factor removed for {EDITOR}; its sessions have ended"
    assert factor_of(cli_env, EDITOR) is None
    [entry] = resets(cli_env)
    assert (entry.via, entry.target) == ("cli", EDITOR)
    nobody = run(capsys, "users", "totp-reset", "no@newsroom.example")
    assert nobody.code != 0 and nobody.err.strip().startswith("error: no desk account")
    assert len(nobody.err.strip().splitlines()) == 1 and "Traceback" not in nobody.err
