"""No 500 from the desk's sign-in, account and accounts pages, whatever a form carries: the
fields of each form filled with arbitrary text (the CSRF token right, so the route's own
checks are what answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.db import Database
from tests.support.desk import csrf_of, make_user, sign_in
from tests.support.web import client, make_app

OWNER = "owner@newsroom.example"
TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=60),
    st.sampled_from(["", "owner", "editor", "viewer", OWNER, "123456", "1", "0", "//x", "%00"]),
)
FORMS = {
    "/desk/login": ["email", "password", "next"],
    "/desk/login/code": ["code", "next"],
    "/desk/login/enrol": ["code", "next"],
    "/desk/account/password": ["current", "new", "repeat"],
    "/desk/account/totp": ["code"],
    "/desk/account/totp/remove": ["password"],
    "/desk/users": ["email", "role", "password"],
    "/desk/users/role": ["email", "role"],
    "/desk/users/remove": ["email"],
    "/desk/users/require-totp": ["on"],
}
PAGES = ["/desk/login", "/desk/account", "/desk/users", "/desk/login/code", "/desk/login/enrol"]

Send = Callable[..., httpx.Response]


@pytest.fixture
def owner_browser(sqlite_db: Database, make_settings) -> Iterator[tuple[Send, str]]:  # type: ignore[no-untyped-def]
    make_user(sqlite_db, OWNER, "owner")
    app = make_app(make_settings(database_url=sqlite_db.url, desk_login_limit=1000), sqlite_db)
    with asyncio.Runner() as runner:
        http = client(app)
        assert runner.run(sign_in(http, OWNER)).status_code == 303
        token = csrf_of(runner.run(http.get("/desk/account")).text)

        def send(*args: Any, **kwargs: Any) -> httpx.Response:
            return runner.run(http.request(*args, **kwargs))

        yield send, token
        runner.run(http.aclose())


@settings(
    max_examples=60,
    deadline=None,
    phases=["explicit", "reuse", "generate"],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(sorted(FORMS)),
    values=st.lists(TEXT, min_size=3, max_size=3),
    page=st.sampled_from(PAGES),
    query=TEXT,
)
def test_no_desk_account_route_fails(owner_browser, path, values, page, query) -> None:  # type: ignore[no-untyped-def]
    send, token = owner_browser
    fields = dict(zip(FORMS[path], values, strict=False))
    # The sign-in form's token comes with the form (there is no session before it).
    login = path == "/desk/login"
    fields["csrf_token"] = csrf_of(send("GET", "/desk/login").text) if login else token
    posted = send("POST", path, data=fields)
    assert posted.status_code < 500, (path, fields, posted.text)
    shown = send("GET", page, params={"next": query, "notice": query})
    assert shown.status_code < 500, (page, query, shown.text)
