"""The admin API: off without a token, bearer-only with one, JSON answers, never a 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from digest import subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.posts import feeds, store
from digest.web.app import create_app
from tests.support.clock import midday

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def add_people(db: Database) -> None:
    zone, hour = midday(utcnow())  # due now, and for hours yet: no new day mid-test
    with db.transaction() as session:
        for i in range(7):
            subscriptions.add(
                session, f"a{i}@example.com", confirmed=True, send_hour=hour, timezone=zone
            )
        for i in range(3):
            subscriptions.add(session, f"p{i}@example.com")


async def test_without_a_token_setting_the_api_does_not_exist(sqlite_db, make_settings) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url), sqlite_db)
    async with client(app) as http:
        for method, path in [("GET", "/api/subscribers"), ("GET", "/api/stats")]:
            response = await http.request(method, path, headers=AUTH)
            assert response.status_code == 404
            assert response.json() == {"error": "There is no page at this address."}
        assert (await http.post("/api/editions", json={}, headers=AUTH)).status_code == 404


async def test_api_errors_are_json_whatever_the_client_accepts(sqlite_db, make_settings) -> None:
    """The one web error handler answers JSON under /api/ and pages everywhere else."""
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with client(app) as http:
        unauthorized = await http.get("/api/stats", headers=browser)
        bad_query = await http.get("/api/subscribers?limit=0", headers={**AUTH, **browser})
        bad_status = await http.get("/api/subscribers?status=x", headers={**AUTH, **browser})
        page = await http.get("/no-such-page", headers=browser)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert unauthorized.json() == {
        "error": "a valid admin token is required: Authorization: Bearer <DIGEST_ADMIN_TOKEN>"
    }
    assert bad_query.status_code == 422 and bad_query.json()["error"].startswith("limit")
    assert bad_status.status_code == 422 and bad_status.json()["error"].startswith("status")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Bearer {TOKEN}x"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": "Bearer"},
        {"authorization": TOKEN},
    ],
    ids=["missing", "wrong", "longer", "basic", "empty", "no-scheme"],
)
async def test_a_missing_or_wrong_token_gets_401(sqlite_db, make_settings, headers) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    async with client(app) as http:
        response = await http.get("/api/stats", headers=headers)
        posted = await http.post("/api/editions", json={"cadence": "daily"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "admin token" in response.json()["error"]
    assert posted.status_code == 401


async def test_subscribers_paged_and_filtered(db: Database, make_settings) -> None:
    add_people(db)
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    async with client(app) as http:
        first = (await http.get("/api/subscribers?limit=4", headers=AUTH)).json()
        second = (await http.get("/api/subscribers?limit=4&offset=4", headers=AUTH)).json()
        pending = (await http.get("/api/subscribers?status=pending", headers=AUTH)).json()
        everyone = (await http.get("/api/subscribers?status=", headers=AUTH)).json()
    assert first["total"] == 10
    assert [s["email"] for s in first["items"]] == [f"a{i}@example.com" for i in range(4)]
    assert second["items"][0]["email"] == "a4@example.com"
    assert (second["limit"], second["offset"]) == (4, 4)
    assert pending["total"] == 3
    assert everyone["total"] == 10
    assert {s["status"] for s in pending["items"]} == {"pending"}
    assert set(first["items"][0]) >= {"id", "email", "status", "cadence", "timezone", "send_hour"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=sleeping", "status"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("offset=-1", "offset"),
        ("limit=ten", "limit"),
    ],
)
async def test_bad_query_gets_a_readable_422(sqlite_db, make_settings, query, field) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    async with client(app) as http:
        response = await http.get(f"/api/subscribers?{query}", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"].startswith(f"{field}")


async def test_stats(db: Database, make_settings) -> None:
    add_people(db)
    with db.transaction() as session:
        feeds.add_feed(session, "https://ok.example/feed")
        feeds.add_feed(session, "https://down.example/feed")
        feeds.record_failure(session, "https://down.example/feed", now=utcnow(), error="timeout")
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    async with client(app) as http:
        stats = (await http.get("/api/stats", headers=AUTH)).json()
    assert stats["subscribers"]["active"] == 7
    assert stats["subscribers"]["pending"] == 3
    assert stats["deliveries"]["queued"] == 0
    assert (stats["editions"], stats["feeds"], stats["feeds_failing"]) == (0, 2, 1)


async def test_make_an_edition_now_and_again(db: Database, make_settings) -> None:
    add_people(db)
    with db.transaction() as session:
        store.add_post(session, title="Kishida to visit NATO", url="https://news.example/nato")
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    async with client(app) as http:
        dry = await http.post(
            "/api/editions", json={"cadence": "daily", "dry_run": True}, headers=AUTH
        )
        made = await http.post("/api/editions", json={"cadence": "daily"}, headers=AUTH)
        again = await http.post("/api/editions", json={"cadence": "daily"}, headers=AUTH)
        weekly = await http.post("/api/editions", json={"cadence": "weekly"}, headers=AUTH)
        stats = (await http.get("/api/stats", headers=AUTH)).json()
    assert dry.status_code == 200
    assert dry.json()["recipients"] == 7
    assert dry.json()["made"] is False
    assert made.status_code == 200
    body = made.json()
    assert body["made"] is True
    assert body["recipients"] == 7
    assert body["edition_id"] is not None
    # This period's digest is queued for everyone: asking again adds nobody.
    assert again.json() == {**again.json(), "made": False, "recipients": 0}
    assert weekly.json()["made"] is False  # nobody is weekly
    assert stats["deliveries"]["queued"] == 7
    assert stats["editions"] == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"cadence": "hourly"}', "application/json"),
        ('{"cadence": "daily", "surprise": 1}', "application/json"),
        ('{"cadence": ', "application/json"),
        ("[1, 2]", "application/json"),
        ("cadence=daily", "application/x-www-form-urlencoded"),
        ('{"due_only": "perhaps"}', "application/json"),
    ],
    ids=["cadence", "extra-field", "broken-json", "array", "form", "not-a-bool"],
)
async def test_bad_edition_requests_get_422(sqlite_db, make_settings, body, content_type) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    async with client(app) as http:
        response = await http.post(
            "/api/editions", content=body, headers={**AUTH, "content-type": content_type}
        )
    assert response.status_code == 422
    assert response.json()["error"]


async def test_the_api_is_described_in_openapi(sqlite_db, make_settings) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    async with client(app) as http:
        schema = (await http.get("/openapi.json")).json()
    paths = schema["paths"]
    assert {"/api/subscribers", "/api/stats", "/api/editions"} <= set(paths)
    ok = paths["/api/subscribers"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/SubscriberPage")
    assert "EditionRequest" in schema["components"]["schemas"]
    assert any(
        s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values()
    )


@hyp_settings(
    max_examples=60,
    deadline=None,
    # One app and store serve every example: the API only reads here.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    status=st.one_of(st.none(), st.text(max_size=12)),
    limit=st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 5000).map(str)),
    offset=st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 5000).map(str)),
)
def test_no_query_string_makes_a_500(sqlite_db, make_settings, status, limit, offset) -> None:
    """Whatever the query string, the answer is 200 or 422 with a message, never a 500."""
    params = {k: v for k, v in {"status": status, "limit": limit, "offset": offset}.items()
              if v is not None}  # fmt: skip
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)

    async def fetch() -> httpx.Response:
        async with client(app) as http:
            return await http.get("/api/subscribers", params=params, headers=AUTH)

    response = asyncio.run(fetch())
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"]


@pytest.mark.parametrize("offset", [2**63, 2**64, 10**30, 1_000_000_001])
async def test_an_offset_past_any_page_is_422_not_500(db: Database, make_settings, offset) -> None:
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    async with client(app) as http:
        far = await http.get("/api/subscribers", params={"offset": offset}, headers=AUTH)
        deepest = await http.get("/api/subscribers", params={"offset": 10**9}, headers=AUTH)
    assert far.status_code == 422, far.text
    assert far.json()["error"].startswith("offset: ")
    assert deepest.status_code == 200 and deepest.json()["items"] == []


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/bounces", b'{"events": [{"type": ', "application/json"),
        ("/api/editions", b"not json at all", "application/json"),
        ("/api/editions", b'{"cadence": "hourly", "surprise": 1}', "application/json"),
        ("/api/bounces/report", b"From: x\r\n\r\nnot a report", "message/rfc822"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-token-0123456789"}])
async def test_a_caller_without_the_token_learns_nothing_from_its_body(
    sqlite_db, make_settings, path, body, content_type, headers
) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    async with client(app) as http:
        answer = await http.post(
            path, content=body, headers={**headers, "content-type": content_type}
        )
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "a valid admin token is required: Authorization: Bearer <DIGEST_ADMIN_TOKEN>"
    }


async def test_a_large_body_without_the_token_is_not_read(sqlite_db, make_settings) -> None:
    app = create_app(make_settings(database_url=sqlite_db.url, admin_token=TOKEN), sqlite_db)
    sent = 0

    async def body():  # type: ignore[no-untyped-def]
        nonlocal sent
        yield b'{"events": ['
        for _ in range(60):  # 960 KB of events, under the bounce routes' 1 MB cap
            sent += 1
            yield b'{"type": "hard", "email": "x@example.com", "detail": "' + b"y" * 16000 + b'"},'
        yield b"]}"

    async with client(app) as http:
        answer = await http.post(
            "/api/bounces", content=body(), headers={"content-type": "application/json"}
        )
    assert answer.status_code == 401
    assert sent == 0  # the app answered from the headers; not one event was pulled from the wire
