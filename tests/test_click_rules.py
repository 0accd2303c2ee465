"""Whose click was it: the pure rules of ``click_rules``, and that counting them in batches,
as the fold does every second, gives the verdicts counting them all at once would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.click_rules import (
    BURST_SECONDS,
    FORCE_SECONDS,
    SETTLE_SECONDS,
    Hit,
    due,
    image_proxy,
    is_scanner_agent,
    machine_flags,
    machine_request,
)

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
]
PROGRAMS = [
    "",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
    "Barracuda Sentinel (EE)",
    "Microsoft Office Existence Discovery",
]

copies = st.sampled_from(["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"])
links = st.sampled_from([f"{i:032x}" for i in range(6)])
hits = st.lists(
    st.builds(Hit, copies, links, st.floats(0, 30, allow_nan=False), st.booleans()), max_size=30
)


@pytest.mark.parametrize("agent", BROWSERS)
def test_a_browser_following_a_link_is_a_person(agent: str) -> None:
    assert not machine_request("GET", agent)
    assert machine_request("HEAD", agent)  # browsers follow links with GET


@pytest.mark.parametrize("agent", PROGRAMS)
def test_programs_and_missing_agents_are_machines(agent: str) -> None:
    assert is_scanner_agent(agent)
    assert is_scanner_agent(agent.upper())


def test_image_proxies_are_told_apart_from_mail_programs() -> None:
    assert image_proxy("Mozilla/5.0")  # Apple Mail Privacy Protection, exactly this
    assert image_proxy(
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert image_proxy("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html")
    assert not any(image_proxy(agent) for agent in BROWSERS)
    assert not image_proxy(None)


@given(copies, links, st.floats(0, 1e9, allow_nan=False))
def test_a_lone_click_by_a_browser_is_a_person(copy: str, link: str, at: float) -> None:
    assert machine_flags([Hit(copy, link, at)]) == [False]


@given(copies, links, st.floats(0, 1e6, allow_nan=False), st.floats(BURST_SECONDS + 0.01, 3600))
def test_the_same_copy_clicking_again_later_is_still_a_person(
    copy: str, link: str, at: float, pause: float
) -> None:
    other = f"{int(link, 16) + 1:032x}"
    assert machine_flags([Hit(copy, link, at), Hit(copy, other, at + pause)]) == [False, False]


@given(
    copies,
    st.integers(3, 6),
    st.floats(0, 1e6, allow_nan=False),
    st.floats(0, 1.3),
    st.randoms(use_true_random=False),
)
def test_a_burst_of_links_is_a_machine_whatever_the_order(
    copy: str, count: int, start: float, step: float, rng
) -> None:  # type: ignore[no-untyped-def]
    burst = [Hit(copy, f"{i:032x}", start + i * step) for i in range(count)]
    lone = Hit("zzzzzzzzzzzz", f"{0:032x}", start)  # another copy, clicking at the same time
    events = [*burst, lone]
    rng.shuffle(events)
    flags = dict(zip(events, machine_flags(events), strict=True))
    assert all(flags[h] for h in burst)
    assert not flags[lone]


def test_two_links_a_second_apart_or_three_in_four_seconds() -> None:
    a, b, c = (f"{i:032x}" for i in range(3))
    assert machine_flags([Hit("x", a, 0.0), Hit("x", b, 0.9)]) == [True, True]
    assert machine_flags([Hit("x", a, 0.0), Hit("x", b, 2.0)]) == [False, False]
    assert machine_flags([Hit("x", a, 0.0), Hit("x", b, 2.0), Hit("x", c, 3.9)]) == [True] * 3
    # The same link twice is a double click, not a scan.
    assert machine_flags([Hit("x", a, 0.0), Hit("x", a, 0.1)]) == [False, False]
    # No copy tag (a link copied from the web version): nothing to be in a burst with.
    assert machine_flags([Hit(None, a, 0.0), Hit(None, b, 0.1)]) == [False, False]


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(copies, links, st.floats(0, 2.0), st.booleans(), st.floats(0, 1.9)),
        max_size=25,
    ),
    st.floats(0.3, 1.5),
)
def test_batched_folding_gives_the_verdicts_of_one_big_batch(raw, tick: float) -> None:  # type: ignore[no-untyped-def]
    """Events reach the table up to ARRIVAL_SECONDS late; a fold every ``tick`` seconds takes
    the due ones, judged with whatever is in the table, and deletes them."""
    # Each copy clicks within 2 s (no copy is folded in forced pieces here).
    events = [(Hit(c, link, at, m), at + delay) for c, link, at, m, delay in raw]
    truth = dict(zip(range(len(events)), machine_flags([h for h, _ in events]), strict=True))
    table: dict[int, Hit] = {}
    verdicts: dict[int, bool] = {}
    now = 0.0
    while len(verdicts) < len(events):
        now += tick
        table.update({i: h for i, (h, arrived) in enumerate(events) if arrived <= now})
        for i in list(verdicts):
            table.pop(i, None)
        ids = sorted(table)
        present = [table[i] for i in ids]
        for i, ready, machine in zip(ids, due(present, now), machine_flags(present), strict=True):
            if ready:
                verdicts[i] = machine
        assert now < 100
    assert verdicts == truth


@given(hits, st.floats(0, 40))
def test_every_click_is_due_within_the_forced_time(events: list[Hit], now: float) -> None:
    for hit, ready in zip(events, due(events, now), strict=True):
        if hit.at <= now - max(FORCE_SECONDS, SETTLE_SECONDS):
            assert ready
        if hit.at > now - SETTLE_SECONDS:
            assert not ready
