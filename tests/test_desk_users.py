"""The owner's accounts page (/desk/users) and everyone's own account page: what each role
may do, the errors shown beside the fields, and the audit log of every change. Both stores."""

from __future__ import annotations

from contextlib import aclosing

import pytest
from sqlmodel import col, select

from digest.models import AuditEntry, DeskSession, DeskUser
from tests.support.desk import PASSWORD, desk_client, make_user, sign_in
from tests.support.web import client, make_app

OWNER = "owner@newsroom.example"
EDITOR = "editor@newsroom.example"
NEW = "new.writer@newsroom.example"
STRONG = "a-fresh-long-passphrase-91"


def audit_of(db, action: str) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        rows = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == action).order_by(col(AuditEntry.id))
        ).all()
        return [AuditEntry.model_validate(r) for r in rows]


def account(db, email: str) -> DeskUser | None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        row = session.exec(select(DeskUser).where(col(DeskUser.email) == email)).first()
        return DeskUser.model_validate(row) if row else None


ACTIONS = [
    ("/desk/users", {"email": NEW, "role": "viewer", "password": STRONG}),
    ("/desk/users/role", {"email": OWNER, "role": "viewer"}),
    ("/desk/users/remove", {"email": OWNER}),
    ("/desk/users/require-totp", {"on": "1"}),
    ("/desk/users/totp-reset", {"email": OWNER}),
]


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_only_owners_reach_the_accounts_page(db, settings, role) -> None:
    make_user(db, OWNER, "owner")
    http, csrf = await desk_client(make_app(settings, db), db, role)
    async with aclosing(http):
        assert (await http.get("/desk/users")).status_code == 403
        assert "/desk/users" not in (await http.get("/desk/")).text  # not in the navigation
        for path, fields in ACTIONS:
            answer = await http.post(path, data={**fields, "csrf_token": csrf})
            assert answer.status_code == 403, path
    assert account(db, NEW) is None and account(db, OWNER).role == "owner"  # type: ignore[union-attr]
    assert audit_of(db, "user.role") == [] and audit_of(db, "user.remove") == []


async def test_owner_actions_need_the_csrf_token(db, settings) -> None:
    http, _ = await desk_client(make_app(settings, db), db, "owner", OWNER)
    async with aclosing(http):
        for path, fields in ACTIONS:
            assert (await http.post(path, data=fields)).status_code == 403, path
            forged = {**fields, "csrf_token": "x" * 43}
            assert (await http.post(path, data=forged)).status_code == 403, path
    assert account(db, NEW) is None


async def test_owner_adds_changes_and_removes_an_account(db, settings) -> None:
    app = make_app(settings, db)
    http, csrf = await desk_client(app, db, "owner", OWNER)
    async with aclosing(http):
        added = await http.post(
            "/desk/users",
            data={"email": NEW, "role": "viewer", "password": STRONG, "csrf_token": csrf},
        )
        assert added.status_code == 303
        page = await http.get(added.headers["location"])
        assert NEW in page.text and "never" in page.text
        async with client(app) as newcomer:
            assert (await sign_in(newcomer, NEW, STRONG)).status_code == 303
            assert (await newcomer.get("/desk/users")).status_code == 403
            changed = await http.post(
                "/desk/users/role", data={"email": NEW, "role": "owner", "csrf_token": csrf}
            )
            assert changed.status_code == 303
            assert (await newcomer.get("/desk/users")).status_code == 200  # role applies at once
            removed = await http.post("/desk/users/remove", data={"email": NEW, "csrf_token": csrf})
            assert removed.status_code == 303
            assert (await newcomer.get("/desk/")).status_code == 303  # its session ended
    assert account(db, NEW) is None
    [add] = [e for e in audit_of(db, "user.add") if e.via == "desk"]
    [role] = audit_of(db, "user.role")
    [gone] = audit_of(db, "user.remove")
    for entry in (add, role, gone):
        assert (entry.via, entry.actor, entry.target) == ("desk", OWNER, NEW)
        assert entry.source == "203.0.113.7"
    assert add.after == {"role": "viewer"}
    assert (role.before, role.after) == ({"role": "viewer"}, {"role": "owner"})
    assert gone.before == {"role": "owner"}


async def test_require_totp_toggle_is_audited(db, settings) -> None:
    http, csrf = await desk_client(make_app(settings, db), db, "owner", OWNER)
    async with aclosing(http):
        await http.post("/desk/users/require-totp", data={"on": "1", "csrf_token": csrf})
        await http.post("/desk/users/require-totp", data={"on": "0", "csrf_token": csrf})
    on, off = audit_of(db, "policy.require_totp")
    assert (on.actor, on.before, on.after) == (
        OWNER,
        {"require_totp": False},
        {"require_totp": True},
    )
    assert (off.before, off.after) == ({"require_totp": True}, {"require_totp": False})


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"email": "not-an-address", "role": "editor", "password": STRONG}, "email", "address"),
        ({"email": EDITOR, "role": "editor", "password": STRONG}, "email", "has a desk account"),
        ({"email": NEW, "role": "editor", "password": "short"}, "password", "12 characters"),
        (
            {"email": NEW, "role": "emperor", "password": STRONG},
            "role",
            "use owner, editor or viewer",
        ),
    ],
)
async def test_adding_shows_the_error_beside_the_field(db, settings, fields, field, words) -> None:
    make_user(db, EDITOR, "editor")
    http, csrf = await desk_client(make_app(settings, db), db, "owner", OWNER)
    async with aclosing(http):
        answer = await http.post("/desk/users", data={**fields, "csrf_token": csrf})
    assert answer.status_code == 422
    error = answer.text.split(f'id="{field}-error">', 1)[1].split("</span>", 1)[0]
    assert words in error
    assert f'aria-describedby="{field}-error"' in answer.text
    assert f'value="{fields["email"]}"' in answer.text  # what was typed is kept
    assert account(db, NEW) is None


async def test_the_last_owner_keeps_the_role(db, settings) -> None:
    http, csrf = await desk_client(make_app(settings, db), db, "owner", OWNER)
    make_user(db, EDITOR, "editor")
    async with aclosing(http):
        demoted = await http.post(
            "/desk/users/role", data={"email": OWNER, "role": "editor", "csrf_token": csrf}
        )
        removed = await http.post("/desk/users/remove", data={"email": OWNER, "csrf_token": csrf})
    assert demoted.status_code == removed.status_code == 409
    assert "another owner" in demoted.text
    assert account(db, OWNER).role == "owner"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("current", "new", "repeat", "field", "words"),
    [
        ("wrong-current-password", STRONG, STRONG, "current", "not your current password"),
        (PASSWORD, "short", "short", "new", "12 characters"),
        (PASSWORD, STRONG, STRONG + "x", "repeat", "differ"),
    ],
)
async def test_password_change_errors_beside_the_field(
    db, settings, current, new, repeat, field, words
) -> None:
    http, csrf = await desk_client(make_app(settings, db), db, "viewer", EDITOR)
    async with aclosing(http):
        fields = {"current": current, "new": new, "repeat": repeat, "csrf_token": csrf}
        answer = await http.post("/desk/account/password", data=fields)
        still = await http.get("/desk/")
    assert answer.status_code == 422
    error = answer.text.split(f'id="{field}-error">', 1)[1].split("</span>", 1)[0]
    assert words in error
    assert still.status_code == 200  # nothing changed, session kept
    assert audit_of(db, "user.password") == []


async def test_password_change_is_audited_and_the_session_renewed(db, settings) -> None:
    http, csrf = await desk_client(make_app(settings, db), db, "viewer", EDITOR)
    async with aclosing(http):
        before = http.cookies["digest_desk"]
        fields = {"current": PASSWORD, "new": STRONG, "repeat": STRONG, "csrf_token": csrf}
        assert (await http.post("/desk/account/password", data=fields)).status_code == 303
        assert http.cookies["digest_desk"] != before
        assert (await http.get("/desk/account")).status_code == 200
    [entry] = audit_of(db, "user.password")
    assert (entry.via, entry.actor, entry.target) == ("desk", EDITOR, EDITOR)
    with db.transaction() as session:
        assert len(session.exec(select(DeskSession)).all()) == 1
