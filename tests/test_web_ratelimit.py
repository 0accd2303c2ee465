"""The per-IP subscribe limit: who counts as one client, and the limit across processes."""

from __future__ import annotations

import pytest

from digest.db import Database
from digest.web.ratelimit import client_ip, client_key
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
