"""No input to any desk route yields a 5xx, signed in (as an owner, with a valid CSRF token,
so the routes' own checks are what the input meets) or not: hypothesis throws requests at
every route the app mounts under /desk/."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote, urlencode

import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import subscriptions
from digest.db import Database
from digest.web.app import create_app, default_routers
from tests.support.desk import PASSWORD, csrf_of, make_user, sign_in
from tests.support.web import client as http_client

FIELDS = [
    "email", "password", "q", "status", "cadence", "newsletter", "zone", "topics", "confirm",
    "until", "subject", "body", "at", "local_hour", "on", "url", "post", "role", "code",
    "after", "before", "action", "name", "current", "new", "repeat", "position", "to",
    "next", "map", "file",
]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "fuzz@example.com", "owner@newsroom.example", "daily", "weekly", "active",
            "Europe/Paris", "2026-12-24T09:00", "2026-13-45", "7", "-1", "0", "1",
            "99999999999999999999", "x" * 300, "\x00", "%", "_", "owner", "viewer",
            "http://127.0.0.1:1/feed", "javascript:alert(1)", "//evil.example",
        ]
    ),
)  # fmt: skip
FORM = st.dictionaries(st.sampled_from(FIELDS), st.lists(VALUES, max_size=3), max_size=6)
SEGMENT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "..", "%", "1", "0", "-5", "99999999999999999999", "a.b", "1.svg"]),
)
PARAM = re.compile(r"\{[^}]+\}")


def _desk_routes() -> list[tuple[str, str]]:
    found = []
    for router in default_routers():
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path.startswith("/desk"):
                found += [(method, route.path) for method in sorted(route.methods - {"HEAD"})]
    return sorted(found)


@pytest.fixture
def desk(sqlite_db: Database, make_settings):  # type: ignore[no-untyped-def]
    s = make_settings(database_url=sqlite_db.url, ip_limit=100_000, desk_login_limit=1000)
    with sqlite_db.transaction() as session:
        subscriptions.add(session, "fuzz@example.com", confirmed=True)
    make_user(sqlite_db, "owner@newsroom.example", "owner")
    app = create_app(s, sqlite_db)
    # One event loop for all examples; the in-process client raises any unhandled error.
    with asyncio.Runner() as runner:
        signed = http_client(app)
        runner.run(sign_in(signed, "owner@newsroom.example", PASSWORD))
        token = csrf_of(runner.run(signed.get("/desk/")).text)
        stranger = http_client(app, "198.51.100.9")

        def request(who: str, *args, **kwargs):  # type: ignore[no-untyped-def]
            http = signed if who == "owner" else stranger
            return runner.run(http.request(*args, **kwargs))

        yield request, token, _desk_routes()
        runner.run(signed.aclose())
        runner.run(stranger.aclose())


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    who=st.sampled_from(["owner", "stranger"]),
    pick=st.integers(min_value=0),
    segment=SEGMENT,
    query=st.dictionaries(st.sampled_from(FIELDS), SEGMENT, max_size=3),
    form=FORM,
    with_token=st.booleans(),
    kind=st.sampled_from(["form", "multipart", "json", ""]),
)
def test_no_desk_request_gets_a_5xx(
    desk, who, pick, segment, query, form, with_token, kind
) -> None:  # type: ignore[no-untyped-def]
    request, token, routes = desk
    method, template = routes[pick % len(routes)]
    path = PARAM.sub(lambda _: quote(segment, safe="") or "x", template)
    if template.endswith("/logout") or template.endswith("/logout-everywhere"):
        return  # would end the signed-in session the other examples need
    if query:
        path += "?" + urlencode(query)
    fields = [(k, v) for k, vs in form.items() for v in vs]
    if with_token:
        fields.append(("csrf_token", token))
    headers = {"accept": "text/html"}
    if kind == "form":
        body = urlencode(fields).encode("utf-8", "surrogatepass")
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif kind == "multipart":
        boundary = "fuzzboundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields
        ]
        body = ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")
        headers["content-type"] = f"multipart/form-data; boundary={boundary}"
    elif kind == "json":
        body = b'{"csrf_token": 1}'
        headers["content-type"] = "application/json"
    else:
        body = b""
    response = request(who, method, path, content=body, headers=headers)
    assert response.status_code < 500, (who, method, path, fields[:5], response.text[:300])
    if who == "stranger":
        # Nothing under /desk/ but the sign-in form answers a stranger with content.
        assert response.status_code in {303, 401, 403, 404, 405, 422, 429} or (
            template == "/desk/login"
        ), (method, path, response.status_code)
