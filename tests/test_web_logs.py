"""No capability token reaches a log: ``digest serve``'s access lines and our own show the
route with the token cut."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from digest import subscriptions
from digest.db import Database
from digest.links import confirm_url, preferences_url, unsubscribe_url
from digest.logs import cut_tokens
from tests.support.serve import SECRET, serve_env, serving


def test_cut_tokens_keeps_the_route_and_drops_the_token() -> None:
    line = '203.0.113.5:4000 - "GET /unsubscribe/MTIz.YWJj-_x?from=mail HTTP/1.1" 200'
    assert cut_tokens(line) == '203.0.113.5:4000 - "GET /unsubscribe/…?from=mail HTTP/1.1" 200'
    assert cut_tokens("GET /archive/12") == "GET /archive/12"


@pytest.mark.parametrize("log_json", [False, True], ids=["key-value", "json"])
def test_serve_logs_no_token_of_a_confirm_unsubscribe_or_preferences_link(
    sqlite_db: Database, tmp_path: Path, make_settings, log_json: bool
) -> None:
    with sqlite_db.transaction() as session:
        ann = subscriptions.add(session, "ann@example.com")
        ann_id = ann.id
    env = serve_env(tmp_path, database_url=sqlite_db.url, log_json=str(log_json).lower())
    with serving(tmp_path, env) as served:
        settings = make_settings(secret_key=SECRET, base_url=served.url)
        links = [
            confirm_url(settings, ann_id, "ann@example.com"),
            preferences_url(settings, ann_id, "ann@example.com"),
            unsubscribe_url(settings, ann_id, "ann@example.com"),
        ]
        answers = [httpx.get(link) for link in links]
        answers.append(httpx.post(links[0]))  # confirms: the token was real
        answers.append(httpx.get(links[0].rsplit(".", 1)[0] + ".forged"))  # a bad token, 400
        assert served.terminate() == 0
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 400]
    log = "\n".join(served.log_lines())
    for link in links:
        token = link.rsplit("/", 1)[1]
        assert token not in log
        assert token.split(".")[0] not in log  # nor any part of it
    for route in ("/confirm/…", "/preferences/…", "/unsubscribe/…"):
        assert f"GET {route} HTTP/1.1" in log  # uvicorn's access line, with the route kept
