"""No input to any public endpoint yields a 5xx: hypothesis throws requests at the real app."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import subscriptions
from digest.db import Database
from digest.links import confirm_url, preferences_url, unsubscribe_url
from digest.web.app import create_app
from tests.support.web import client as http_client

FIELDS = [
    "email",
    "name",
    "cadence",
    "topics",
    "website",
    "source",
    "timezone",
    "timezone_other",
    "send_hour",
    "List-Unsubscribe",
]
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "a@example.com",
            "daily",
            "weekly",
            "Europe/Paris",
            "../etc",
            "7",
            "-1",
            "One-Click",
            "x" * 300,
            "\x00",
            "a@b",
            "=?utf-8?b?QQ==?=",
        ]
    ),
)
FORM = st.dictionaries(st.sampled_from(FIELDS), st.lists(VALUES, max_size=3), max_size=6)
SEGMENT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "..", "%", "1", "0", "-5", "99999999999999", "a.b", "a.b.c"]),
)


@pytest.fixture
def app_and_links(sqlite_db: Database, make_settings):  # type: ignore[no-untyped-def]
    s = make_settings(database_url=sqlite_db.url, ip_limit=100_000)
    with sqlite_db.transaction() as session:
        sub = subscriptions.add(session, "fuzz@example.com", confirmed=True)
    links = [
        url.removeprefix(s.base_url)
        for url in (
            confirm_url(s, sub.id, sub.email),
            unsubscribe_url(s, sub.id, sub.email),
            preferences_url(s, sub.id, sub.email),
        )
    ]
    # One event loop for all examples; the in-process client raises any unhandled error.
    with asyncio.Runner() as runner:
        http = http_client(create_app(s, sqlite_db))
        yield (lambda *a, **kw: runner.run(http.request(*a, **kw))), links
        runner.run(http.aclose())


def _body(kind: str, form: dict[str, list[str]], raw: bytes) -> tuple[bytes, str]:
    if kind == "form":
        return urlencode(
            [(k, v) for k, vs in form.items() for v in vs]
        ).encode(), "application/x-www-form-urlencoded"
    if kind == "json":
        return json.dumps(
            {k: vs if len(vs) != 1 else vs[0] for k, vs in form.items()}
        ).encode(), "application/json"
    if kind == "multipart":
        boundary = "fuzzboundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, vs in form.items()
            for v in vs
        ]
        return ("".join(parts) + f"--{boundary}--\r\n").encode(
            "utf-8", "surrogatepass"
        ), f"multipart/form-data; boundary={boundary}"
    return raw, kind


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "OPTIONS"]),
    route=st.sampled_from(
        [
            "/",
            "/subscribe",
            "/confirm/{}",
            "/unsubscribe/{}",
            "/preferences/{}",
            "/archive",
            "/archive/{}",
            "/healthz",
            "/metrics",
            "/openapi.json",
            "link0",
            "link1",
            "link2",
        ]
    ),
    segment=SEGMENT,
    query=st.dictionaries(st.sampled_from(["page", "x"]), SEGMENT, max_size=2),
    kind=st.sampled_from(
        [
            "form",
            "json",
            "multipart",
            "text/plain",
            "",
            "application/json",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
        ]
    ),
    form=FORM,
    raw=st.binary(max_size=200),
    accept=st.sampled_from(["text/html", "application/json", "*/*", ""]),
)
def test_no_request_gets_a_5xx(
    app_and_links, method, route, segment, query, kind, form, raw, accept
) -> None:
    request, links = app_and_links
    if route.startswith("link"):
        path = links[int(route[-1])]
    else:
        path = route.replace("{}", quote(segment, safe=""))
    if query:
        path += "?" + urlencode(query)
    body, content_type = _body(kind, form, raw)
    headers = {"accept": accept} if accept else {}
    if content_type:
        headers["content-type"] = content_type
    response = request(method, path, content=body, headers=headers)
    assert response.status_code < 500, (method, path, content_type, body[:200], response.text[:300])
