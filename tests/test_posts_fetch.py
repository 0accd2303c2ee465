"""Fetching feeds over real HTTP on 127.0.0.1: validators, redirects, faults, caps, SSRF guard."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.errors import FeedError
from digest.posts import fetch
from digest.posts.fetch import AddressPolicy, check_url, fetch_feed
from tests.support.feed_server import FeedServer

FEEDS = Path(__file__).parent / "feeds"
RSS = (FEEDS / "rss2_media.xml").read_bytes()
OPEN = AddressPolicy(allow_private=True)
# The guard stays on, with only the test server's loopback address let through.
LOOPBACK_ONLY = AddressPolicy(also_allowed=(ipaddress.ip_network("127.0.0.1/32"),))
STAMP = "Sat, 28 Nov 2026 18:05:00 GMT"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer().start()
    yield srv
    srv.stop()


async def get(url: str, policy: AddressPolicy = OPEN, **kwargs: object) -> fetch.FetchResult:
    options: dict = {"timeout": 5.0, "max_bytes": 1_000_000, "policy": policy, **kwargs}
    return await fetch_feed(url, **options)


async def test_plain_fetch_returns_body_and_validators(server: FeedServer) -> None:
    url = server.route("/feed", body=RSS, etag='"v1"', last_modified=STAMP)
    result = await get(url)
    assert result.status == 200 and result.body == RSS
    assert result.etag == '"v1"'
    assert result.last_modified == STAMP
    assert "rss" in (result.content_type or "")


async def test_conditional_get_sends_validators_and_gets_304(server: FeedServer) -> None:
    url = server.route("/feed", body=RSS, etag='"v1"', last_modified=STAMP)
    result = await get(url, etag='"v1"', last_modified=STAMP)
    assert result.not_modified and result.body == b""
    sent = server.seen("/feed")[-1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == STAMP


async def test_last_modified_alone_gives_304(server: FeedServer) -> None:
    url = server.route("/feed", body=RSS, last_modified=STAMP)
    result = await get(url, last_modified=STAMP)
    assert result.status == 304


async def test_follows_up_to_five_redirects(server: FeedServer) -> None:
    server.route("/feed", body=RSS)
    for i in range(5):
        server.route(f"/r{i}", redirect_to=f"/r{i + 1}" if i < 4 else "/feed", status=301)
    result = await get(server.url("/r0"))
    assert result.status == 200 and result.url == server.url("/feed")


async def test_six_redirects_are_too_many(server: FeedServer) -> None:
    server.route("/feed", body=RSS)
    for i in range(6):
        server.route(f"/r{i}", redirect_to=f"/r{i + 1}" if i < 5 else "/feed")
    with pytest.raises(FeedError, match="more than 5 redirects"):
        await get(server.url("/r0"))


async def test_redirect_loop(server: FeedServer) -> None:
    server.route("/a", redirect_to="/b")
    server.route("/b", redirect_to="/a")
    with pytest.raises(FeedError, match="redirect loop"):
        await get(server.url("/a"))


@pytest.mark.parametrize(("status", "words"), [(404, "404 Not Found"), (500, "500 Internal")])
async def test_http_errors(server: FeedServer, status: int, words: str) -> None:
    url = server.route("/feed", body=b"oops", status=status, content_type="text/plain")
    with pytest.raises(FeedError, match=words):
        await get(url)


async def test_unknown_path_is_404(server: FeedServer) -> None:
    with pytest.raises(FeedError, match="answered 404"):
        await get(server.url("/missing"))


async def test_timeout(server: FeedServer) -> None:
    url = server.route("/slow", body=RSS, delay=2.0)
    started = time.monotonic()
    with pytest.raises(FeedError, match=re.escape("no complete answer within 0.5s")):
        await get(url, timeout=0.5)
    assert time.monotonic() - started < 1.8


async def test_unreachable_port() -> None:
    with pytest.raises(FeedError, match="cannot connect"):
        await get("http://127.0.0.1:9/feed")


async def test_oversized_with_content_length(server: FeedServer) -> None:
    url = server.route("/big", body=b"x" * 50_000)
    with pytest.raises(FeedError, match="larger than the 10,000 bytes allowed"):
        await get(url, max_bytes=10_000)


async def test_oversized_stream_is_cut_off(server: FeedServer) -> None:
    # No Content-Length and 100 MB on offer: the reader must stop past the cap.
    url = server.route("/endless", body=b"y" * 65536, stream_chunks=1600)
    started = time.monotonic()
    with pytest.raises(FeedError, match="larger than"):
        await get(url, max_bytes=200_000)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/feed", "file:///etc/passwd", "javascript:alert(1)", "http:///nohost"],
)
def test_only_http_urls(url: str) -> None:
    with pytest.raises(FeedError, match="only http"):
        check_url(url, OPEN)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/feed",
        "http://192.168.1.10/feed",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
        "http://[::ffff:10.0.0.1]/feed",
        "http://0.0.0.0/feed",
        "http://224.0.0.1/feed",
        "http://100.64.0.1/feed",
    ],
)
async def test_private_ip_literals_refused_without_connecting(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    async def spy(self: object, host: str, *args: object, **kwargs: object) -> None:
        attempts.append(host)
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(fetch._GuardedBackend, "connect_tcp", spy)
    with pytest.raises(FeedError, match="non-public address"):
        await get(url, policy=AddressPolicy())
    assert attempts == []


async def test_loopback_refused_by_default(server: FeedServer) -> None:
    url = server.route("/feed", body=RSS)
    with pytest.raises(FeedError, match=re.escape("non-public address 127.0.0.1")):
        await get(url, policy=AddressPolicy())
    assert server.seen("/feed") == []


async def test_name_resolving_to_loopback_is_refused(server: FeedServer) -> None:
    server.route("/feed", body=RSS)
    with pytest.raises(FeedError, match="refused to fetch localhost"):
        await get(f"http://localhost:{server.port}/feed", policy=AddressPolicy())
    assert server.seen("/feed") == []


async def test_every_redirect_hop_is_checked(server: FeedServer) -> None:
    server.route("/hop", redirect_to="http://10.0.0.1/internal")
    with pytest.raises(FeedError, match=re.escape("non-public address 10.0.0.1")):
        await get(server.url("/hop"), policy=LOOPBACK_ONLY)
    server.route("/hop2", redirect_to="http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FeedError, match=re.escape("169.254.169.254")):
        await get(server.url("/hop2"), policy=LOOPBACK_ONLY)


def test_public_addresses_pass() -> None:
    AddressPolicy().check("93.184.216.34", "example.com")
    AddressPolicy().check("2606:2800:220:1:248:1893:25c8:1946", "example.com")
