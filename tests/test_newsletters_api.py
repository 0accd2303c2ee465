"""The admin API's newsletters and a person's subscriptions, over real HTTP on both stores."""

from __future__ import annotations

import httpx
import pytest

from digest import newsletters, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.subscriber_fields import Consent
from digest.web.app import create_app
from tests.support.newsletters import queue_edition

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(db: Database, make_settings) -> tuple[httpx.AsyncClient, Settings]:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url, admin_token=TOKEN)
    app = create_app(settings, db)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 40000))
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=AUTH
    ), settings


async def test_add_list_get_edit_archive(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    http, _ = api
    async with http:
        made = await http.post(
            "/api/newsletters",
            json={
                "slug": "tech",
                "name": "Tech news",
                "cadences": ["weekly"],
                "from": "Tech Desk <tech@example.com>",
                "public": False,
                "topics": ["AI"],
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["from"] == "Tech Desk <tech@example.com>"
        listed = (await http.get("/api/newsletters")).json()
        assert [(n["slug"], n["name"], n["public"]) for n in listed] == [
            ("digest", "digest", True),
            ("tech", "Tech news", False),
        ]
        assert listed[1]["cadences"] == ["weekly"] and listed[1]["subscribers"]["active"] == 0

        assert listed[1]["utm"] is True  # UTM on post links unless turned off
        changed = await http.patch(
            "/api/newsletters/tech", json={"slug": "technology", "send_hour": 9, "utm": False}
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["slug"], changed.json()["send_hour"]) == ("technology", 9)
        assert changed.json()["utm"] is False
        # The old slug keeps finding it.
        old = await http.get("/api/newsletters/tech")
        assert (old.status_code, old.json()["slug"], old.json()["former_slugs"]) == (
            200,
            "technology",
            ["tech"],
        )
        archived = await http.post("/api/newsletters/technology/archive")
        assert archived.status_code == 200 and archived.json()["archived"] is True
        assert [n["slug"] for n in (await http.get("/api/newsletters")).json()] == ["digest"]
        everything = (await http.get("/api/newsletters?archived=true")).json()
        assert [n["slug"] for n in everything] == ["digest", "technology"]


async def test_archive_is_refused_while_an_edition_is_being_sent(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    http, settings = api
    async with http:
        assert (
            await http.post("/api/newsletters", json={"slug": "tech", "name": "T"})
        ).status_code == 201
        queue_edition(db, settings, "tech")
        refused = await http.post("/api/newsletters/tech/archive")
        assert refused.status_code == 409
        assert refused.json()["error"].startswith("newsletter 'tech' has an edition being sent")
        assert (await http.get("/api/newsletters/tech")).json()["archived"] is False


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/api/newsletters", {"slug": "digest", "name": "X"}, 422, "a newsletter 'digest'"),
        ("POST", "/api/newsletters", {"slug": "Bad Slug", "name": "X"}, 422, "newsletter slug"),
        ("POST", "/api/newsletters", {"slug": "x", "name": "X", "from": "no"}, 422, "From:"),
        ("POST", "/api/newsletters", {"slug": "x", "name": "X", "cadences": []}, 422, "cadences"),
        ("POST", "/api/newsletters", {"slug": "x", "name": "X", "colour": "red"}, 422, "colour"),
        ("GET", "/api/newsletters/nope", None, 404, "no newsletter 'nope'"),
        ("PATCH", "/api/newsletters/nope", {"name": "Y"}, 404, "no newsletter 'nope'"),
        ("POST", "/api/newsletters/nope/archive", None, 404, "no newsletter 'nope'"),
        ("GET", "/api/subscribers/nobody@example.com/subscriptions", None, 404, "no subscriber"),
    ],
)
async def test_bad_requests_get_a_status_and_a_message(  # type: ignore[no-untyped-def]
    api, method: str, path: str, body: object, status: int, message: str
) -> None:
    http, _ = api
    async with http:
        response = await http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


async def test_a_persons_subscriptions_carry_their_newsletter_and_consent(
    api, db: Database
) -> None:  # type: ignore[no-untyped-def]
    http, _ = api
    with db.transaction() as session:
        tech = newsletters.add(session, "tech", name="Tech")
        subscriptions.add(session, "ann@example.com", confirmed=True, topics="World")
        subscriptions.add(
            session,
            "ann@example.com",
            newsletter_id=int(tech.id or 0),
            cadence="weekly",
            consent=Consent(
                at=utcnow(), ip="198.51.100.7", user_agent="Firefox", source="import", wording="v1"
            ),
        )
    async with http:
        response = await http.get("/api/subscribers/Ann@Example.com/subscriptions")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["email"] == "ann@example.com"
    rows = [
        (s["newsletter"], s["status"], s["cadence"], s["topics"]) for s in data["subscriptions"]
    ]
    assert rows == [("digest", "active", "daily", ["World"]), ("tech", "pending", "weekly", [])]
    assert data["subscriptions"][1]["consent_ip"] == "198.51.100.7"


async def test_the_routes_need_the_token_and_are_in_the_schema(api) -> None:  # type: ignore[no-untyped-def]
    http, _ = api
    async with http:
        stranger = await http.get("/api/newsletters", headers={"authorization": "Bearer wrong"})
        unread = await http.post(
            "/api/newsletters", json={"slug": "x", "name": "X"}, headers={"authorization": ""}
        )
        schema = (await http.get("/openapi.json")).json()
    assert stranger.status_code == 401 and unread.status_code == 401
    for path in (
        "/api/newsletters",
        "/api/newsletters/{slug}",
        "/api/newsletters/{slug}/archive",
        "/api/subscribers/{email}/subscriptions",
    ):
        assert path in schema["paths"]
    assert {"NewsletterOut", "NewsletterIn", "NewsletterPatch", "Subscriptions"} <= set(
        schema["components"]["schemas"]
    )
