"""Fetching feeds over real HTTP on 127.0.0.1: validators, redirects, faults, caps, SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import FeedError
from digest.posts import fetch, special_addresses
from digest.posts.fetch import AddressPolicy, IPAddress, check_url, fetch_feed
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


# The gaps a review found: each counted as public before the IETF registries were applied.
TEREDO_TO_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"  # client bits: NOT 10.0.0.1
GAPS = [
    "fec0::1",  # site-local
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    TEREDO_TO_10_0_0_1,
    "192.0.0.100",  # IETF protocol assignments, beyond the /29 Python calls private
    "192.88.99.1",  # the deprecated 6to4 relay anycast
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the cloud metadata service
    "64:ff9b:1::1",  # local-use translation
    "3fff::1",  # documentation
]


@pytest.mark.parametrize("address", GAPS)
async def test_special_purpose_literals_refused_without_connecting(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def spy(self: object, host: str, *args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(fetch._GuardedBackend, "connect_tcp", spy)
    with pytest.raises(FeedError, match="non-public address"):
        await get(
            f"http://[{address}]/feed" if ":" in address else f"http://{address}/feed",
            policy=AddressPolicy(),
        )


def test_refusal_names_the_wrapped_address() -> None:
    with pytest.raises(FeedError, match=re.escape("Teredo client 10.0.0.1: private-use")):
        AddressPolicy().check(TEREDO_TO_10_0_0_1, "tunnel.example")
    with pytest.raises(FeedError, match=re.escape("6to4 127.0.0.1: loopback")):
        AddressPolicy().check("2002:7f00:1::", "six.example")
    AddressPolicy(allow_private=True).check("2002:7f00:1::", "six.example")


def _in(net: str) -> st.SearchStrategy[IPAddress]:
    network = ipaddress.ip_network(net)
    first = int(network.network_address)
    return st.integers(first, first + network.num_addresses - 1).map(ipaddress.ip_address)


REFUSED_V4 = st.sampled_from(special_addresses.IPV4_REFUSED).flatmap(lambda row: _in(str(row[0])))
REFUSED_V6 = st.sampled_from(special_addresses.IPV6_REFUSED).flatmap(lambda row: _in(str(row[0])))
# Blocks the regional registries hand out to ordinary networks (no special-purpose entry).
PUBLIC_V4 = st.sampled_from(
    ["1.0.0.0/8", "8.0.0.0/7", "23.0.0.0/8", "93.184.0.0/16", "104.16.0.0/12", "185.0.0.0/8"]
).flatmap(_in)
PUBLIC_V6 = st.sampled_from(["2400::/12", "2600::/12", "2a00::/12", "2c0f::/16"]).flatmap(_in)
V6_OUTSIDE_UNICAST = (
    st.integers(0, 2**128 - 1)
    .map(ipaddress.IPv6Address)
    .filter(lambda ip: ip not in ipaddress.ip_network("2000::/3"))
)


def _wrapped(v4: ipaddress.IPv4Address) -> st.SearchStrategy[ipaddress.IPv6Address]:
    """Every IPv6 form that leads to ``v4``, with random bits where the form has any."""
    value = int(v4)
    server = PUBLIC_V4.map(int)
    return st.one_of(
        st.just(ipaddress.IPv6Address(0xFFFF << 32 | value)),
        st.just(ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | value)),
        st.integers(0, 2**80 - 1).map(
            lambda low: ipaddress.IPv6Address(0x2002 << 112 | value << 80 | low)
        ),
        st.tuples(server, st.integers(0, 2**32 - 1)).map(
            lambda sf: ipaddress.IPv6Address(
                0x20010000 << 96 | sf[0] << 64 | sf[1] << 32 | (~value & 0xFFFFFFFF)
            )
        ),
    )


def _refused(ip: IPAddress) -> bool:
    try:
        AddressPolicy().check(str(ip), "h.example")
    except FeedError:
        return True
    return False


@given(st.one_of(REFUSED_V4, REFUSED_V6, V6_OUTSIDE_UNICAST))
def test_every_address_of_a_special_purpose_block_is_refused(ip: IPAddress) -> None:
    assert _refused(ip)
    AddressPolicy(allow_private=True).check(str(ip), "h.example")  # the tests' escape hatch


@given(REFUSED_V4.flatmap(_wrapped))
def test_every_wrapper_of_a_refused_ipv4_is_refused(ip: ipaddress.IPv6Address) -> None:
    assert _refused(ip)


@given(st.one_of(PUBLIC_V4, PUBLIC_V6, PUBLIC_V4.flatmap(_wrapped)))
def test_public_addresses_and_their_wrappers_pass(ip: IPAddress) -> None:
    assert not _refused(ip)


async def test_the_address_checked_is_the_one_connected_to(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding name answers a good address to the check and a bad one later: the guard
    # resolves once and connects to the literal it checked, so a second answer is never used.
    url = server.route("/feed", body=RSS)
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    resolved: list[str] = []
    connected: list[str] = []

    async def rebinding(self: object, host: str, port: int, **kwargs: object) -> list:
        address = next(answers)
        resolved.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    inner_connect = httpcore.AnyIOBackend.connect_tcp

    async def record(self: object, host: str, *args: object) -> object:
        connected.append(host)
        return await inner_connect(self, host, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", rebinding)
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", record)
    result = await get(url.replace("127.0.0.1", "feeds.example"), policy=LOOPBACK_ONLY)
    assert result.status == 200 and result.body == RSS
    assert resolved == ["feeds.example"] and connected == ["127.0.0.1"]
