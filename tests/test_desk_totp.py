"""The desk's second factor: enrolling from /desk/account, the code step at sign-in, a code
never accepted twice, removing it, and an owner requiring it of every account. Both stores."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
import time_machine
from sqlmodel import col, select

from digest import desk_accounts
from digest.audit import Actor
from digest.models import AuditEntry, DeskUser
from tests.support.desk import PASSWORD, csrf_of, make_user, sign_in
from tests.support.web import client, make_app

EDITOR = "editor@newsroom.example"
OWNER = "owner@newsroom.example"
T0 = datetime(2026, 3, 2, 9, 7, 10, tzinfo=UTC)  # early in a 30-second step
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')


@pytest.fixture
def frozen():  # type: ignore[no-untyped-def]
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def secret_on(page: str) -> str:
    found = SECRET.search(page)
    assert found, page
    return found.group(1)


async def enrol(http: httpx.AsyncClient, when: datetime) -> str:
    """Turn on the second factor from the account page; the secret."""
    page = await http.get("/desk/account")
    secret = secret_on(page.text)
    assert "otpauth://totp/" in page.text and f"secret={secret}" in page.text
    fields = {"code": code_at(secret, when), "csrf_token": csrf_of(page.text)}
    answer = await http.post("/desk/account/totp", data=fields)
    assert answer.status_code == 303, answer.text
    return secret


async def give_code(http: httpx.AsyncClient, location: str, code: str) -> httpx.Response:
    page = await http.get(location)
    assert page.status_code == 200
    action = "/desk/login/enrol" if "/enrol" in location else "/desk/login/code"
    next_path = re.search(r'name="next" value="([^"]*)"', page.text)
    assert next_path
    fields = {"code": code, "csrf_token": csrf_of(page.text), "next": next_path.group(1)}
    return await http.post(action, data=fields)


def totp_of(db, email: str) -> tuple[str | None, int | None]:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        user = session.exec(select(DeskUser).where(col(DeskUser.email) == email)).one()
        return user.totp_secret, user.totp_last_step


async def test_enrol_then_sign_in_with_a_code(db, settings, frozen) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as http:
        await sign_in(http, EDITOR)
        wrong = await http.post(
            "/desk/account/totp",
            data={"code": "000000", "csrf_token": csrf_of((await http.get("/desk/account")).text)},
        )
        assert wrong.status_code == 422 and 'id="code-error"' in wrong.text
        assert totp_of(db, EDITOR)[0] is None  # nothing saved before a right code
        secret = await enrol(http, T0)
        assert "badge ok" in (await http.get("/desk/account")).text
    assert totp_of(db, EDITOR)[0] == secret
    frozen.shift(timedelta(seconds=30))
    async with client(app) as http:
        answer = await sign_in(http, EDITOR)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/desk/login/code?next=/desk/"
        pending = http.cookies["digest_desk"]
        assert (await http.get("/desk/")).status_code == 303  # no page before the code
        done = await give_code(
            http, answer.headers["location"], code_at(secret, T0 + timedelta(seconds=30))
        )
        assert done.status_code == 303 and done.headers["location"] == "/desk/"
        assert http.cookies["digest_desk"] != pending  # a new session id
        assert (await http.get("/desk/")).status_code == 200
    async with client(app) as stale:  # the pending session's cookie is worth nothing now
        stale.cookies.set("digest_desk", pending, path="/desk")
        assert (await stale.get("/desk/login/code")).status_code == 303


async def test_a_code_is_accepted_once(db, settings, frozen) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as http:
        await sign_in(http, EDITOR)
        secret = await enrol(http, T0)
    frozen.shift(timedelta(seconds=30))
    code = code_at(secret, T0 + timedelta(seconds=30))
    async with client(app) as http:
        first = await give_code(http, (await sign_in(http, EDITOR)).headers["location"], code)
        assert first.status_code == 303
    async with client(app) as http:  # the same code, seen over a shoulder
        again = await give_code(http, (await sign_in(http, EDITOR)).headers["location"], code)
        assert again.status_code == 401 and 'id="code-error"' in again.text
        assert (await http.get("/desk/")).status_code == 303
        # The code of the step before is older still; the next step's is fine.
        older = await give_code(http, "/desk/login/code", code_at(secret, T0))
        assert older.status_code == 401
        frozen.shift(timedelta(seconds=30))
        later = await give_code(
            http, "/desk/login/code", code_at(secret, T0 + timedelta(seconds=60))
        )
        assert later.status_code == 303


async def test_a_code_of_the_next_step_is_accepted(db, settings, frozen) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as http:
        await sign_in(http, EDITOR)
        secret = await enrol(http, T0)
    frozen.shift(timedelta(seconds=30))
    async with client(app) as http:
        location = (await sign_in(http, EDITOR)).headers["location"]
        ahead = code_at(secret, T0 + timedelta(seconds=60))  # a phone clock slightly ahead
        assert (await give_code(http, location, ahead)).status_code == 303


async def test_wrong_codes_count_towards_the_login_limit(db, make_settings, frozen) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(make_settings(database_url=db.url, desk_login_limit=3), db)
    async with client(app) as http:
        await sign_in(http, EDITOR)
        secret = await enrol(http, T0)
    frozen.shift(timedelta(seconds=30))
    async with client(app) as http:
        location = (await sign_in(http, EDITOR)).headers["location"]
        for _ in range(3):
            assert (await give_code(http, location, "123456")).status_code == 401
        right = code_at(secret, T0 + timedelta(seconds=30))
        assert (await give_code(http, location, right)).status_code == 429
    async with client(app) as http:
        assert (await sign_in(http, EDITOR)).status_code == 429


async def test_removing_the_second_factor_needs_the_password(db, settings, frozen) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        await sign_in(http, EDITOR)
        await enrol(http, T0)
        token = csrf_of((await http.get("/desk/account")).text)
        wrong = await http.post(
            "/desk/account/totp/remove", data={"password": "not-my-password", "csrf_token": token}
        )
        assert wrong.status_code == 422 and 'id="remove-error"' in wrong.text
        assert totp_of(db, EDITOR)[0] is not None
        right = await http.post(
            "/desk/account/totp/remove", data={"password": PASSWORD, "csrf_token": token}
        )
        assert right.status_code == 303
        assert totp_of(db, EDITOR) == (None, None)
        assert (await sign_in(http, EDITOR)).headers["location"] == "/desk/"
    with db.transaction() as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
    assert "user.totp_enrol" in actions and "user.totp_remove" in actions


async def test_owner_requires_a_second_factor_of_everyone(db, settings, frozen) -> None:
    make_user(db, OWNER, "owner")
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as owner:
        await sign_in(owner, OWNER)
        token = csrf_of((await owner.get("/desk/users")).text)
        turned = await owner.post("/desk/users/require-totp", data={"on": "1", "csrf_token": token})
        assert turned.status_code == 303
        assert "Required" in (await owner.get("/desk/users")).text
    with db.transaction() as session:
        assert desk_accounts.policy(session).require_totp
    async with client(app) as http:
        answer = await sign_in(http, EDITOR)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/desk/login/enrol?next=/desk/"
        assert (await http.get("/desk/account")).status_code == 303  # no page before enrolling
        page = await http.get(answer.headers["location"])
        secret = secret_on(page.text)
        assert secret == secret_on((await http.get(answer.headers["location"])).text)  # stable
        assert (await give_code(http, answer.headers["location"], "000000")).status_code == 401
        done = await give_code(http, answer.headers["location"], code_at(secret, T0))
        assert done.status_code == 303 and done.headers["location"] == "/desk/"
        account = await http.get("/desk/account")
        assert account.status_code == 200 and "requires one of every account" in account.text
        removal = await http.post(
            "/desk/account/totp/remove",
            data={"password": PASSWORD, "csrf_token": csrf_of(account.text)},
        )
        assert removal.status_code == 409  # required: it stays
    assert totp_of(db, EDITOR)[0] == secret
    frozen.shift(timedelta(seconds=30))
    async with client(app) as http:  # from now on, a code like anyone enrolled
        answer = await sign_in(http, EDITOR)
        assert answer.headers["location"] == "/desk/login/code?next=/desk/"


async def test_two_pending_sessions_are_offered_different_keys(db, make_settings, frozen) -> None:
    make_user(db, EDITOR, "editor")
    settings = make_settings(database_url=db.url)
    with db.transaction() as session:
        desk_accounts.set_require_totp(session, Actor.cli(), True)
    app = make_app(settings, db)
    async with client(app) as one, client(app) as two:
        first = await one.get((await sign_in(one, EDITOR)).headers["location"])
        second = await two.get((await sign_in(two, EDITOR)).headers["location"])
    assert secret_on(first.text) != secret_on(second.text)
