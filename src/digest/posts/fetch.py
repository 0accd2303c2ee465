"""Fetching a feed over HTTP safely: SSRF guard, conditional GET, timeout, size and redirect caps.

The guard sits in the network backend, where the connection is made, so it checks the very
address connected to (no DNS-rebinding gap) on every redirect hop; IP literals are refused
before anything is sent. Redirects are followed by hand so each hop is checked and counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from digest.errors import FeedError, first_line
from digest.posts.special_addresses import refusal

MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2048  # the feeds.url column
# Not httpx's is_redirect, which counts 304 Not Modified as one.
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "digest/0.1 (+newsletter digest; feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, application/json;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a feed may live at: public ones only, unless private ones are allowed.

    ``also_allowed`` lets tests open one loopback address while keeping the guard on.
    """

    allow_private: bool = False
    also_allowed: tuple[IPNetwork, ...] = ()
    #: The setting an operator turns on to allow private addresses, named in the refusal.
    setting: str = "DIGEST_ALLOW_PRIVATE_FEEDS"
    #: What the refusal says was refused: "fetch" a feed, "post to" a webhook.
    verb: str = "fetch"

    def check(self, address: str, host: str) -> None:
        """Raise FeedError when the address is not one a feed may be fetched from."""
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.allow_private or any(ip in net for net in self.also_allowed):
            return
        why = refusal(str(ip))
        if why is not None:
            raise FeedError(
                f"refused to {self.verb} {host}: it resolves to the non-public address {ip} "
                f"({why}; set {self.setting}=true to allow it)"
            )


def check_url(url: str, policy: AddressPolicy, what: str = "feed") -> httpx.URL:
    """The URL parsed, if it is http(s) with a host and not a refused IP literal; ``what``
    names the URL's use in the refusal ("feed", "webhook")."""
    if len(url) > MAX_URL_LENGTH:
        raise FeedError(f"{url[:80]}...: the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise FeedError(f"{url}: not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FeedError(f"{url}: only http:// and https:// {what} URLs are accepted")
    try:
        ipaddress.ip_address(parsed.host)
    except ValueError:
        return parsed  # a name: checked when it is resolved, at connect time
    policy.check(parsed.host, parsed.host)
    return parsed


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, checks every address, and connects only to checked ones."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host} ({exc.strerror})") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        # Every address must pass: a name with one public and one private address could
        # otherwise be steered to the private one.
        for address in addresses:
            self._policy.check(address, host)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used for feeds")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guarded network backend underneath."""

    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__()
        # httpx takes no network backend argument; its pool is replaced with one that has ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=20,
            network_backend=_GuardedBackend(policy),
        )


@dataclass(frozen=True)
class FetchResult:
    """A fetched feed: the final URL, 200 with a body or 304 without, and the validators."""

    url: str
    status: int
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        """Whether the server said nothing changed since the validators we sent."""
        return self.status == 304


async def fetch_feed(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    policy: AddressPolicy,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchResult:
    """GET the feed, conditionally when validators are given; FeedError with a reason otherwise."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    client = httpx.AsyncClient(
        transport=GuardedTransport(policy),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,  # an environment proxy would resolve names beyond our guard
    )
    try:
        async with client, asyncio.timeout(timeout):
            return await _follow(client, url, headers, max_bytes, policy)
    except (TimeoutError, httpx.TimeoutException):
        raise FeedError(f"{url}: no complete answer within {timeout:g}s") from None
    except httpx.ConnectError as exc:
        raise FeedError(f"{url}: cannot connect ({_reason(exc)})") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"{url}: the request failed ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return first_line(exc).removeprefix("[Errno 111] ")[:200]


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    max_bytes: int,
    policy: AddressPolicy,
) -> FetchResult:
    current = check_url(url, policy)
    seen = {str(current)}
    for _hop in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", current, headers=headers) as response:
            if response.status_code in REDIRECTS:
                location = response.headers.get("location", "").strip()
                if not location:
                    raise FeedError(f"{url}: redirect without a Location header")
                current = check_url(str(response.url.join(location)), policy)
                if str(current) in seen:
                    raise FeedError(f"{url}: redirect loop (back to {current})")
                seen.add(str(current))
                continue
            if response.status_code == 304:
                return FetchResult(url=str(response.url), status=304)
            if response.status_code >= 400:
                phrase = response.reason_phrase or "error"
                raise FeedError(f"{url}: the server answered {response.status_code} {phrase}")
            if response.status_code != 200:
                raise FeedError(f"{url}: unexpected answer {response.status_code}")
            body = await _read_capped(response, url, max_bytes)
            return FetchResult(
                url=str(response.url),
                status=200,
                body=body,
                content_type=response.headers.get("content-type"),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
    raise FeedError(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    too_big = FeedError(f"{url}: the feed is larger than the {max_bytes:,} bytes allowed")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    total = 0
    # Counted after decompression, so a small gzip bomb is stopped as well.
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
