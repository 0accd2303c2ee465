"""Property tests of the web app's pure rules: the sliding window, client addresses, parsing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from digest.errors import DigestError
from digest.signup import is_blocked
from digest.web.forms import parse_json, parse_urlencoded
from digest.web.ratelimit import SlidingWindow, client_ip, client_key
from digest.web.signup import parse_request


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    limit=st.integers(1, 5),
    window=st.integers(1, 50),
    steps=st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 20)), max_size=80),
)
def test_window_never_allows_more_than_limit(limit, window, steps) -> None:
    clock = Clock()
    limiter = SlidingWindow(limit, window, clock=clock)
    allowed: dict[str, list[float]] = {"a": [], "b": []}
    for key, advance in steps:
        clock.now += advance
        retry = limiter.hit(key)
        recent = [t for t in allowed[key] if t > clock.now - window]
        if retry is None:
            allowed[key].append(clock.now)
            assert len(recent) + 1 <= limit
        else:
            # Refused only when the window is really full, and told a wait that will work.
            assert len(recent) == limit
            assert 1 <= retry <= window
            clock_after = clock.now + retry
            assert all(t <= clock_after - window for t in recent[:1])


def test_ipv6_clients_share_their_64() -> None:
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("192.0.2.1") != client_key("192.0.2.2")


@given(st.text(max_size=60), st.text(max_size=60))
def test_untrusted_peers_cannot_choose_their_address(peer, header) -> None:
    assert client_ip("203.0.113.5", header, []) == "203.0.113.5"
    assert client_ip("203.0.113.5", header, ["10.0.0.0/8"]) == "203.0.113.5"
    # Whatever a proxy passes on, the answer is an address or the peer itself.
    got = client_ip("10.0.0.1", header, ["10.0.0.0/8"])
    assert got == "10.0.0.1" or ":" in got or got.count(".") == 3


def test_rightmost_untrusted_hop_is_the_client() -> None:
    trusted = ["10.0.0.0/8"]
    assert client_ip("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", trusted) == "198.51.100.7"
    assert client_ip("10.0.0.1", "10.0.0.3", trusted) == "10.0.0.1"


fields = st.dictionaries(
    st.sampled_from(["email", "name", "cadence", "topics", "website", "source", "x"]),
    st.lists(st.text(max_size=40), max_size=3),
    max_size=7,
)


@given(fields)
@hsettings(max_examples=300)
def test_parse_request_accepts_or_explains(form) -> None:
    try:
        request = parse_request(form)
    except DigestError as exc:
        assert exc.http_status == 422 and str(exc)
        return
    assert "@" in request.email and request.email == request.email.lower()
    for text in [request.name or "", *(request.topics or [])]:
        assert "\n" not in text and "\r" not in text


@given(st.binary(max_size=300))
def test_body_parsers_accept_or_explain(body) -> None:
    for parse in (parse_urlencoded, parse_json):
        try:
            parsed = parse(body)
        except DigestError as exc:
            assert exc.http_status == 422
            continue
        assert all(isinstance(v, str) for values in parsed.values() for v in values)


@given(st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True))
def test_blocked_domains_match_subdomains_only(domain) -> None:
    assert is_blocked(f"a@{domain}", [domain])
    assert is_blocked(f"a@sub.{domain}", [domain.upper()])
    assert not is_blocked(f"a@x{domain}", [domain])
