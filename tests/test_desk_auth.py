"""Signing in to the desk and out of it: where sign-in lands, what a failed one tells, the
session cookie and its lifetime, and what ends a session (logout, log out everywhere, a new
password, a removed account). Both stores: sessions live in the store."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine

from digest import desk_accounts
from digest.audit import Actor
from tests.support.cli import run
from tests.support.desk import PASSWORD, csrf_of, make_user, sign_in
from tests.support.web import client, make_app

EDITOR = "editor@newsroom.example"
NEW_PASSWORD = "another-long-desk-passphrase-77"
T0 = datetime(2026, 3, 2, 9, 7, 30, tzinfo=UTC)


def session_cookie(response: httpx.Response) -> str:
    """The Set-Cookie line that hands out the desk's session."""
    lines = [c for c in response.headers.get_list("set-cookie") if c.startswith("digest_desk=")]
    assert len(lines) == 1, response.headers
    return lines[0]


async def sign_in_to(http: httpx.AsyncClient, email: str, next_path: str) -> httpx.Response:
    form = await http.get("/desk/login", params={"next": next_path})
    token = csrf_of(form.text)
    fields = {"email": email, "password": PASSWORD, "csrf_token": token, "next": next_path}
    return await http.post("/desk/login", data=fields)


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/desk/account", "/desk/account"),
        ("/desk/users?notice=x", "/desk/users?notice=x"),
        ("//evil.example", "/desk/"),
        ("https://evil.example", "/desk/"),
        ("/desk/\\evil.example", "/desk/"),
        ("/desk//evil.example", "/desk//evil.example"),
    ],
)
async def test_sign_in_lands_on_next_but_only_on_desk_paths(db, settings, asked, lands) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        answer = await sign_in_to(http, EDITOR, asked)
    assert answer.status_code == 303
    assert answer.headers["location"] == lands


async def test_a_page_asked_for_signed_out_is_reached_after_sign_in(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        sent = await http.get("/desk/account")
        assert sent.status_code == 303
        form = await http.get(sent.headers["location"])
        fields = {"email": EDITOR, "password": PASSWORD, "csrf_token": csrf_of(form.text)}
        fields["next"] = "/desk/account"
        assert "/desk/account" in form.text
        answer = await http.post("/desk/login", data=fields)
        assert answer.headers["location"] == "/desk/account"
        page = await http.get("/desk/account")
    assert page.status_code == 200 and EDITOR in page.text


async def test_wrong_password_and_unknown_address_get_the_same_answer(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        wrong = await sign_in(http, EDITOR, "not-the-password-at-all")
        unknown = await sign_in(http, "nobody@newsroom.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "digest_desk=" not in " ".join(wrong.headers.get_list("set-cookie"))
    # The only difference: the address each form shows back as typed.
    assert wrong.text.replace(EDITOR, "@") == unknown.text.replace("nobody@newsroom.example", "@")


@pytest.mark.parametrize("token", [None, "", "forged-token"])
async def test_login_form_without_its_csrf_token_is_refused(db, settings, token) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        await http.get("/desk/login")
        fields = {"email": EDITOR, "password": PASSWORD}
        if token is not None:
            fields["csrf_token"] = token
        answer = await http.post("/desk/login", data=fields)
        after = await http.get("/desk/")
    assert answer.status_code == 403
    assert after.status_code == 303  # not signed in


@pytest.mark.parametrize(("base", "secure"), [("https://news.example", True), ("http://x", False)])
async def test_session_cookie_flags(db, make_settings, base, secure) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(make_settings(database_url=db.url, base_url=base), db)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    scheme = "https" if secure else "http"
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver") as http:
        answer = await sign_in(http, EDITOR)
        assert answer.status_code == 303
        cookie = session_cookie(answer).lower()
        page = await http.get("/desk/")
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/desk" in cookie
    assert ("; secure" in cookie) is secure
    assert page.status_code == 200


async def test_each_sign_in_gets_a_new_session_id(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        http.cookies.set("digest_desk", "planted-by-someone-else", path="/desk")
        first = session_cookie(await sign_in(http, EDITOR))
        second = session_cookie(await sign_in(http, EDITOR))
    assert "planted-by-someone-else" not in first
    assert first.split(";")[0] != second.split(";")[0]


async def test_the_old_session_does_not_outlive_a_new_sign_in(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as http:
        await sign_in(http, EDITOR)
        old = http.cookies["digest_desk"]
        await sign_in(http, EDITOR)
    async with client(app) as thief:
        thief.cookies.set("digest_desk", old, path="/desk")
        assert (await thief.get("/desk/")).status_code == 303


async def test_idle_session_ends(db, make_settings) -> None:
    make_user(db, EDITOR, "editor")
    settings = make_settings(database_url=db.url, desk_idle_minutes=30)
    with time_machine.travel(T0, tick=False) as traveller:
        async with client(make_app(settings, db)) as http:
            await sign_in(http, EDITOR)
            traveller.shift(timedelta(minutes=29))
            assert (await http.get("/desk/")).status_code == 200
            traveller.shift(timedelta(minutes=29))  # 29 since the last request
            assert (await http.get("/desk/")).status_code == 200
            traveller.shift(timedelta(minutes=31))
            gone = await http.get("/desk/account")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/desk/login?next=/desk/account"


async def test_busy_session_ends_at_its_absolute_limit(db, make_settings) -> None:
    make_user(db, EDITOR, "editor")
    settings = make_settings(database_url=db.url, desk_session_hours=2)
    with time_machine.travel(T0, tick=False) as traveller:
        async with client(make_app(settings, db)) as http:
            await sign_in(http, EDITOR)
            for _ in range(3):  # active every 40 minutes: never idle
                traveller.shift(timedelta(minutes=39))
                assert (await http.get("/desk/")).status_code == 200
            traveller.shift(timedelta(minutes=4))  # 2 h 01 since sign-in
            assert (await http.get("/desk/")).status_code == 303


async def test_logout_ends_the_session_on_the_server(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as http:
        await sign_in(http, EDITOR)
        cookie = http.cookies["digest_desk"]
        token = csrf_of((await http.get("/desk/")).text)
        out = await http.post("/desk/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/desk/login"
    async with client(app) as replay:  # the cookie a copy of the browser kept
        replay.cookies.set("digest_desk", cookie, path="/desk")
        assert (await replay.get("/desk/")).status_code == 303


async def test_log_out_everywhere_ends_other_browsers(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app, "198.51.100.1") as laptop, client(app, "198.51.100.2") as phone:
        phone.headers["user-agent"] = "PhoneBrowser/7.1"
        await sign_in(laptop, EDITOR)
        await sign_in(phone, EDITOR)
        page = await laptop.get("/desk/account")
        assert page.text.count('class="session"') == 2
        assert "198.51.100.2" in page.text and "PhoneBrowser/7.1" in page.text
        out = await laptop.post("/desk/logout-everywhere", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert (await phone.get("/desk/")).status_code == 303
        assert (await laptop.get("/desk/")).status_code == 303


async def test_a_new_password_from_the_cli_ends_sessions(
    db, settings, cli_env, capsys, monkeypatch
) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        await sign_in(http, EDITOR)
        assert (await http.get("/desk/")).status_code == 200
        monkeypatch.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))
        result = run(capsys, "users", "passwd", EDITOR, "--password-stdin")
        assert result.code == 0, result.err
        assert (await http.get("/desk/")).status_code == 303
        assert (await sign_in(http, EDITOR, NEW_PASSWORD)).status_code == 303


async def test_a_new_password_from_the_desk_ends_other_sessions(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as laptop, client(app) as phone:
        await sign_in(laptop, EDITOR)
        await sign_in(phone, EDITOR)
        token = csrf_of((await laptop.get("/desk/account")).text)
        fields = {"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        changed = await laptop.post("/desk/account/password", data={**fields, "csrf_token": token})
        assert changed.status_code == 303
        assert (await phone.get("/desk/")).status_code == 303
        here = await laptop.get(changed.headers["location"])
        assert here.status_code == 200 and "password is changed" in here.text
        assert (await sign_in(phone, EDITOR, NEW_PASSWORD)).status_code == 303


async def test_removing_an_account_ends_its_sessions(db, settings) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        await sign_in(http, EDITOR)
        with db.transaction() as session:
            desk_accounts.remove(session, Actor.cli(), EDITOR)
        assert (await http.get("/desk/")).status_code == 303


async def test_desk_pages_forbid_inline_code_framing_and_caching(db, settings) -> None:
    make_user(db, "owner@newsroom.example", "owner")
    async with client(make_app(settings, db)) as http:
        pages = [await http.get("/desk/login")]
        await sign_in(http, "owner@newsroom.example")
        pages += [await http.get(p) for p in ("/desk/", "/desk/account", "/desk/users")]
    for page in pages:
        assert page.status_code == 200, page.url
        csp = page.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert " style=" not in page.text and "<script>" not in page.text


async def test_desk_off_hides_it_but_the_admin_api_works(db, make_settings) -> None:
    make_user(db, EDITOR, "editor")
    token = "admin-token-0123456789-abcdefghijkl"
    settings = make_settings(database_url=db.url, desk=False, admin_token=token)
    async with client(make_app(settings, db)) as http:
        for path in ("/desk/login", "/desk/", "/desk/account", "/desk/users", "/desk/login/code"):
            assert (await http.get(path)).status_code == 404, path
        posted = await http.post("/desk/login", data={"email": EDITOR, "password": PASSWORD})
        api = await http.get("/api/stats", headers={"authorization": f"Bearer {token}"})
    assert posted.status_code == 404
    assert api.status_code == 200
