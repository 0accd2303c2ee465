"""The per-IP subscribe limit: who counts as one client, and the limit across processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from digest.db import Database
from digest.models import RateHit
from digest.rate_counters import StoreCounter
from digest.web.ratelimit import client_ip, client_key
from tests.support.serve import serve_env, serving
from tests.support.web import client, make_app


def test_ipv4_mapped_addresses_key_as_their_ipv4() -> None:
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("::ffff:192.0.2.1") != client_key("::ffff:198.51.100.1")
    # A mapped proxy is still the trusted proxy; the mapped client behind it is an IPv4 client.
    trusted = ["10.0.0.0/8"]
    assert client_ip("::ffff:10.0.0.1", "::ffff:198.51.100.7", trusted) == "198.51.100.7"
    assert client_ip("::ffff:203.0.113.5", None, trusted) == "203.0.113.5"


@pytest.mark.parametrize("via_proxy", [False, True])
async def test_two_ipv4_clients_of_a_dual_stack_listener_get_two_buckets(
    db: Database, make_settings, via_proxy: bool
) -> None:
    """On ``--host ::`` every IPv4 peer arrives as ``::ffff:a.b.c.d``: one such client using up
    its limit must not lock out another."""
    settings = make_settings(database_url=db.url, ip_limit=1, trusted_proxies="10.0.0.0/8")
    app = make_app(settings, db)
    answers = []
    for n, ip in enumerate(["192.0.2.1", "192.0.2.1", "198.51.100.1"]):
        if via_proxy:
            peer, headers = "::ffff:10.0.0.2", {"x-forwarded-for": f"::ffff:{ip}"}
        else:
            peer, headers = f"::ffff:{ip}", {}
        async with client(app, ip=peer) as http:
            r = await http.post("/subscribe", json={"email": f"m{n}@example.com"}, headers=headers)
            answers.append(r.status_code)
    app.state.writer.close()
    assert answers == [202, 429, 202]


async def test_an_invented_forwarded_line_does_not_get_a_client_a_fresh_bucket(
    sqlite_db: Database, make_settings
) -> None:
    """A trusted proxy that adds its own X-Forwarded-For line (HAProxy) leaves the client's
    own line above it: every line is read, in order, so the client's invented address in the
    first one does not become a new key for each request."""
    settings = make_settings(database_url=sqlite_db.url, ip_limit=1, trusted_proxies="10.0.0.2")
    app = make_app(settings, sqlite_db)
    answers = []
    for n in range(2):
        headers = [("x-forwarded-for", f"192.0.2.{n + 1}"), ("x-forwarded-for", "198.51.100.7")]
        async with client(app, ip="10.0.0.2") as http:
            r = await http.post("/subscribe", json={"email": f"f{n}@example.com"}, headers=headers)
            answers.append(r.status_code)
    app.state.writer.close()
    assert answers == [202, 429]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_two_counters_on_one_store_share_the_limit(db: Database) -> None:
    """Two processes' counters over one store: together no more than the limit per window, a
    refused request is told when the next window opens, and is not counted."""
    clock = Clock(7200.0 + 600)  # ten minutes into a one-hour window
    one, two = (StoreCounter(db, 3, 3600, prefix="subscribe:", clock=clock) for _ in range(2))
    answers = [counter.hit("198.51.100.7") for counter in [one, two] * 4]
    assert answers[:3] == [None, None, None]
    assert answers[3:] == [3000] * 5  # refused until 10800, fifty minutes on
    assert one.hit("198.51.100.8") is None  # another client has its own count
    clock.now = 10800.0  # the next window
    assert [two.hit("198.51.100.7") for _ in range(4)] == [None, None, None, 3600]
    with db.transaction() as session:
        rows = session.execute(sa.select(RateHit.key, RateHit.slot, RateHit.hits)).all()
    # The past window's rows were cleared when this one began; refusals were never counted.
    assert sorted(rows) == [("subscribe:198.51.100.7", 3, 3)]


def test_two_web_processes_on_one_postgresql_store_allow_the_limit_once(
    pg_database_url: str, tmp_path: Path
) -> None:
    """Two ``digest serve`` processes, one PostgreSQL store: a client's requests spread over
    both are refused once, together, they reach DIGEST_IP_LIMIT."""
    limit = 3
    env = serve_env(
        tmp_path, database_url=pg_database_url, ip_limit=str(limit), trusted_proxies="127.0.0.1"
    )
    with serving(tmp_path, env, "one") as one, serving(tmp_path, env, "two") as two:
        # Each attempt is a client of its own; a second is made only if the first straddled
        # the hour (the windows are the clock's hours).
        for attempt in range(2):
            who = f"198.51.100.{attempt + 1}"
            hour = time.time() // 3600
            codes = [
                httpx.post(
                    f"{served.url}/subscribe",
                    json={"email": f"p{attempt}.{n}@example.com"},
                    headers={"x-forwarded-for": who},
                ).status_code
                for n, served in enumerate([one, two] * limit)
            ]
            if time.time() // 3600 == hour:
                break
        assert one.terminate() == 0 and two.terminate() == 0
    assert sorted(codes) == [202] * limit + [429] * limit, codes
