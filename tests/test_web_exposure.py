"""What the HTTP surface gives away when things go wrong: no store address in a 503, JSON from
the admin API even when its body is too large."""

from __future__ import annotations

import pytest

from digest.db import Database
from tests.support.smtp_server import free_port
from tests.support.web import JSON, client, make_app

ADMIN = "admin-token-0123456789abcdef"
METRICS = "metrics-token-0123456789abcdef"


async def test_a_store_that_is_down_is_503_without_its_host_port_or_user(make_settings) -> None:
    port = free_port()  # nothing listens there: every query fails to connect
    url = f"postgresql+psycopg://staffdbuser@127.0.0.1:{port}/newsroom"
    settings = make_settings(database_url=url, metrics_token=METRICS)
    down = Database(url)
    try:
        async with client(make_app(settings, down)) as http:
            answers = [
                await http.get("/healthz"),
                await http.get("/metrics", headers={"authorization": f"Bearer {METRICS}"}),
                await http.post("/subscribe", json={"email": "x@example.com"}),
                await http.get("/archive", headers=JSON),
            ]
    finally:
        down.dispose()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert "unavailable" in answer.text
        for secret in ("staffdbuser", str(port), "127.0.0.1", "newsroom", "psycopg"):
            assert secret not in answer.text, (answer.request.url, answer.text)


@pytest.mark.parametrize("declared", [True, False])
async def test_an_oversized_bounce_report_is_413_in_json(
    sqlite_db: Database, make_settings, declared: bool
) -> None:
    settings = make_settings(database_url=sqlite_db.url, admin_token=ADMIN)
    chunk = b"x" * 65536

    async def streamed():  # type: ignore[no-untyped-def]
        for _ in range(40):  # 2.5 MB, sent without a Content-Length
            yield chunk

    body = chunk * 40 if declared else streamed()
    async with client(make_app(settings, sqlite_db)) as http:
        answer = await http.post(
            "/api/bounces/report",
            content=body,
            headers={"authorization": f"Bearer {ADMIN}", "content-type": "message/rfc822"},
        )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/json"
    assert "over 1024 KB" in answer.json()["error"]
