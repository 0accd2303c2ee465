"""The desk's sign-in at its edges: odd characters in a token or a code are refused, not a
500; every spelling of an address shares one failure count; guesses sent all at once are
each counted; a signed-in person's current password is limited like a sign-in. Both stores."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
import time_machine

from digest import desk_accounts, desk_totp
from digest.audit import Actor
from tests.support.desk import PASSWORD, csrf_of, make_user, sign_in
from tests.support.web import client, make_app

EDITOR = "editor@newsroom.example"
LIMIT = 3
T0 = datetime(2026, 3, 2, 9, 7, 10, tzinfo=UTC)  # early in a 30-second step and mid-window
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture
def frozen():  # type: ignore[no-untyped-def]
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limited(db, make_settings):  # type: ignore[no-untyped-def]
    make_user(db, EDITOR, "editor")
    return make_app(make_settings(database_url=db.url, desk_login_limit=LIMIT), db)


@pytest.mark.parametrize("token", ["é", "ü" * 64, "\u2028", "ｆ" * 64])
async def test_a_non_ascii_csrf_token_on_the_sign_in_form_is_refused(db, settings, token) -> None:
    make_user(db, EDITOR, "editor")
    async with client(make_app(settings, db)) as http:
        await http.get("/desk/login")  # the form's cookie is there; the token is not its own
        answer = await http.post(
            "/desk/login", data={"email": EDITOR, "password": PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 403
        assert "did not come from the desk" in answer.text
        assert (await http.get("/desk/")).status_code == 303  # not signed in


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULLWIDTH], ids=["arabic-indic", "fullwidth"])
def test_only_ascii_digits_make_a_code(digits) -> None:
    secret = pyotp.random_base32()
    right = pyotp.TOTP(secret).at(T0)
    assert desk_totp.matching_step(secret, right, T0) is not None
    assert desk_totp.matching_step(secret, right.translate(digits), T0) is None


async def _pending_page(http: httpx.AsyncClient) -> tuple[str, httpx.Response]:
    answer = await sign_in(http, EDITOR)
    assert answer.status_code == 303
    location = answer.headers["location"]
    return location, await http.get(location)


@pytest.mark.parametrize("digits", [ARABIC_INDIC, FULLWIDTH], ids=["arabic-indic", "fullwidth"])
async def test_other_digits_are_a_wrong_code_on_every_code_form(db, settings, frozen, digits):  # type: ignore[no-untyped-def]
    make_user(db, EDITOR, "editor")
    app = make_app(settings, db)
    async with client(app) as http:  # enrolling from the account page
        await sign_in(http, EDITOR)
        page = await http.get("/desk/account")
        secret = SECRET.search(page.text).group(1)  # type: ignore[union-attr]
        code = pyotp.TOTP(secret).at(T0).translate(digits)
        answer = await http.post(
            "/desk/account/totp", data={"code": code, "csrf_token": csrf_of(page.text)}
        )
        assert answer.status_code == 422 and 'id="code-error"' in answer.text
    with db.transaction() as session:
        desk_accounts.set_require_totp(session, Actor("cli", "test"), True)
    async with client(app) as http:  # enrolling at sign-in, as the policy asks
        location, page = await _pending_page(http)
        assert "/desk/login/enrol" in location
        secret = SECRET.search(page.text).group(1)  # type: ignore[union-attr]
        code = pyotp.TOTP(secret).at(T0).translate(digits)
        fields = {"code": code, "csrf_token": csrf_of(page.text)}
        answer = await http.post("/desk/login/enrol", data=fields)
        assert answer.status_code == 401 and "That code is not right" in answer.text
        ascii_code = {"code": pyotp.TOTP(secret).at(T0), "csrf_token": fields["csrf_token"]}
        assert (await http.post("/desk/login/enrol", data=ascii_code)).status_code == 303
    frozen.shift(timedelta(seconds=30))
    async with client(app) as http:  # the code step of an enrolled account
        location, page = await _pending_page(http)
        assert "/desk/login/code" in location
        code = pyotp.TOTP(secret).at(T0 + timedelta(seconds=30)).translate(digits)
        answer = await http.post(
            "/desk/login/code", data={"code": code, "csrf_token": csrf_of(page.text)}
        )
        assert answer.status_code == 401 and "That code is not right" in answer.text


@pytest.mark.parametrize(
    "spellings",
    [
        ["Editor@Newsroom.example", " EDITOR@newsroom.example ", "editor@NEWSROOM.EXAMPLE"],
        [
            "editor@ｎｅｗｓｒｏｏｍ.example",
            "editor@newsroom。example",
            "Editor@Ｎewsroom。example",
        ],
    ],
    ids=["case", "fullwidth-and-ideographic-stop"],
)
async def test_every_spelling_of_an_address_shares_its_count(limited, frozen, spellings) -> None:
    for n, spelling in enumerate(spellings):  # a different client each time
        async with client(limited, f"198.51.100.{n + 1}") as http:
            answer = await sign_in(http, spelling, "not-the-password-at-all")
            assert answer.status_code == 401
    async with client(limited, "192.0.2.50") as http:
        refused = await sign_in(http, EDITOR)
        assert refused.status_code == 429 and "Too many sign-in attempts" in refused.text


async def test_guesses_sent_at_once_are_each_counted(limited, frozen) -> None:
    async with client(limited, "198.51.100.7") as http:
        form = await http.get("/desk/login")
        token = csrf_of(form.text)
        wrong = {"email": EDITOR, "password": "not-the-password-at-all", "csrf_token": token}
        answers = await asyncio.gather(
            *(http.post("/desk/login", data=wrong) for _ in range(LIMIT + 5))
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * LIMIT + [429] * 5  # the limit, and no more, were checked
    async with client(limited, "192.0.2.50") as http:
        assert (await sign_in(http, EDITOR)).status_code == 429


async def test_right_passwords_are_given_back_between_failures(limited, frozen) -> None:
    async with client(limited, "198.51.100.7") as http:
        for _ in range(LIMIT - 1):
            assert (await sign_in(http, EDITOR, "not-the-password-at-all")).status_code == 401
            assert (await sign_in(http, EDITOR)).status_code == 303
        assert (await sign_in(http, EDITOR, "not-the-password-at-all")).status_code == 401
        assert (await sign_in(http, EDITOR)).status_code == 429  # LIMIT failures, no more


async def _post_account(http: httpx.AsyncClient, path: str, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    page = await http.get("/desk/account")
    return await http.post(path, data={**fields, "csrf_token": csrf_of(page.text)})


async def _enrol(http: httpx.AsyncClient) -> None:
    page = await http.get("/desk/account")
    code = pyotp.TOTP(SECRET.search(page.text).group(1)).at(T0)  # type: ignore[union-attr]
    answer = await http.post(
        "/desk/account/totp", data={"code": code, "csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 303


NEW = "a-brand-new-passphrase-77"
ACCOUNT_FORMS = [
    ("/desk/account/password", "current", {"new": NEW, "repeat": NEW}),
    ("/desk/account/totp/remove", "password", {}),
]


@pytest.mark.parametrize(("path", "field", "rest"), ACCOUNT_FORMS, ids=["password", "totp"])
async def test_current_password_guesses_are_limited(limited, db, frozen, path, field, rest):  # type: ignore[no-untyped-def]
    totp = "totp" in path
    async with client(limited, "198.51.100.7") as http:
        assert (await sign_in(http, EDITOR)).status_code == 303
        if totp:
            await _enrol(http)
        right = await _post_account(http, path, {field: PASSWORD, **rest})
        assert right.status_code == 303  # a right current password is not counted
        if totp:
            await _enrol(http)  # again, so the form to remove it is on the page
        current = PASSWORD if totp else NEW
        for _ in range(LIMIT):
            wrong = await _post_account(http, path, {field: "not-the-password-at-all", **rest})
            assert wrong.status_code == 422 and "not your current password" in wrong.text
        refused = await _post_account(http, path, {field: current, **rest})
        assert refused.status_code == 429 and "Too many sign-in attempts" in refused.text
        assert 'class="field-error"' in refused.text
    with db.transaction() as session:  # the refused right password changed nothing
        assert desk_accounts.authenticate(session, EDITOR, current, T0) is not None
    async with client(limited, "192.0.2.50") as http:  # the account's one count
        assert (await sign_in(http, EDITOR, current)).status_code == 429
