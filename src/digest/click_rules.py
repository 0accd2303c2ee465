"""Whose click was it: a reader's, or a machine's? Pure rules, no store and no clock.

Corporate mail gateways (Microsoft Defender Safe Links, Mimecast, Proofpoint, Barracuda...)
fetch every link of a message when it arrives, most with a browser's user agent, and chat
apps fetch a link to preview it. What a request itself shows:

- a ``HEAD`` request (browsers follow a link with ``GET``);
- a user agent that names a program rather than a browser, or none at all;

and what only the copy's clicks together show, a *burst*: one copy clicking several
different links faster than a person can. Gateways have been seen fetching every link of a
mail within milliseconds of each other, others about one link a second. So a click is a
machine's when its copy clicked:

- 2 different links within 1 second (a person must come back from the page the first one
  opened), or
- 3 different links within 4 seconds (a fast reader opening stories in tabs takes longer;
  a one-link-a-second scanner does it in 2).

Every click inside such a window is a machine's, whatever order the events arrive in.

Opens (the pixel) come from the reader's mail program or from a proxy fetching images for
it. Gmail's proxy says so (``GoogleImageProxy``), Yahoo's too (``YahooMailProxy``); Apple
Mail Privacy Protection fetches every image when the mail arrives, through Apple's relays,
with the bare user agent ``Mozilla/5.0`` (no browser sends only that), and a later real open
in Apple Mail comes through the same relay: it cannot be told from the prefetch, so every
open through it is a proxy open.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

#: (different links, seconds): a copy clicking that many links within that time is a machine.
BURSTS: tuple[tuple[int, float], ...] = ((2, 1.0), (3, 4.0))
#: The widest burst window: an event further than this from all others of its copy is alone.
BURST_SECONDS = max(seconds for _, seconds in BURSTS)
#: How late an event may reach the table after its request (buffered up to a second in each
#: web process, then inserted; clocks of the web processes a little apart).
ARRIVAL_SECONDS = 2.0
#: An event is folded once no later event of its copy can still join its burst.
SETTLE_SECONDS = BURST_SECONDS + ARRIVAL_SECONDS
#: A copy clicking on and on without a pause is folded in pieces after this long, so that
#: every click shows in the counts within 10 seconds.
FORCE_SECONDS = 8.0

# Programs that fetch links: link checkers, gateways that name themselves, chat previews,
# HTTP libraries, headless browsers. Words, not a catalogue: "bot", "spider" and "crawl" in
# any agent mean the same. A phone maker ("Cubot") is the one word that ends in "bot".
_SCANNER_AGENT = re.compile(
    r"bot\b|bot/|spider|crawl|preview|scanner|headless|phantomjs|slurp|facebookexternalhit"
    r"|whatsapp|skypeuripreview|embedly|barracuda|mimecast|proofpoint|urldefense|safelinks"
    r"|trendmicro|symantec|forcepoint|ironport|existence discovery|python|curl/|wget/"
    r"|go-http-client|java/|okhttp|libwww|httpclient|axios/|node-fetch|aiohttp|httpx",
    re.IGNORECASE,
)
_NOT_A_SCANNER = re.compile(r"cubot", re.IGNORECASE)
_IMAGE_PROXY = re.compile(r"googleimageproxy|ggpht\.com|yahoomailproxy", re.IGNORECASE)
#: Apple Mail Privacy Protection's user agent, exactly.
APPLE_PROXY_AGENT = "Mozilla/5.0"


def is_scanner_agent(user_agent: str | None) -> bool:
    """Whether a request's ``User-Agent`` is a program's rather than a person's browser."""
    agent = (user_agent or "").strip()
    if not agent:
        return True  # every browser sends one
    return bool(_SCANNER_AGENT.search(_NOT_A_SCANNER.sub("", agent)))


def machine_request(method: str, user_agent: str | None) -> bool:
    """Whether one request to a tracked link shows, by itself, that no person made it."""
    return method.upper() == "HEAD" or is_scanner_agent(user_agent)


def image_proxy(user_agent: str | None) -> bool:
    """Whether an open (the pixel's request) came from a proxy fetching images for a reader."""
    agent = (user_agent or "").strip()
    return agent == APPLE_PROXY_AGENT or bool(_IMAGE_PROXY.search(agent))


@dataclass(frozen=True)
class Hit:
    """One click as the rules see it: its copy's tag, the link, when, and what the request
    itself showed (``machine``)."""

    copy: str | None
    link: str
    at: float  # seconds, any epoch
    machine: bool = False


def machine_flags(hits: Sequence[Hit]) -> list[bool]:
    """For each hit, whether it was a machine's: its own request said so, or it is in a burst
    of its copy. A hit without a copy tag has no copy to be in a burst with."""
    flags = [h.machine for h in hits]
    by_copy: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hits):
        if h.copy is not None:
            by_copy[h.copy].append(i)
    for indexes in by_copy.values():
        for i in _in_bursts([hits[i] for i in indexes]):
            flags[indexes[i]] = True
    return flags


def _in_bursts(hits: Sequence[Hit]) -> set[int]:
    """Indexes of the hits (one copy's) that lie in a window with too many different links."""
    order = sorted(range(len(hits)), key=lambda i: (hits[i].at, hits[i].link))
    found: set[int] = set()
    for links, seconds in BURSTS:
        start = 0
        for end in range(len(order)):
            while hits[order[end]].at - hits[order[start]].at > seconds:
                start += 1
            window = order[start : end + 1]
            if len({hits[i].link for i in window}) >= links:
                found.update(window)
    return found


def due(hits: Sequence[Hit], now: float) -> list[bool]:
    """For each hit, whether it can be counted at ``now``.

    A copy's hits are counted once its latest burst is over: the hits up to a pause longer
    than the widest burst window, when that pause began more than ``SETTLE_SECONDS`` ago, so
    no hit still to arrive can change their verdict. A copy that never pauses is counted in
    pieces once its first waiting hit is ``FORCE_SECONDS`` old; a hit without a copy is alone.
    """
    cutoff = now - SETTLE_SECONDS
    ready = [h.at <= cutoff for h in hits]
    by_copy: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hits):
        if h.copy is not None:
            by_copy[h.copy].append(i)
    for indexes in by_copy.values():
        indexes.sort(key=lambda i: hits[i].at)
        if hits[indexes[0]].at <= now - FORCE_SECONDS:
            continue  # forced: whatever has settled goes now
        last = -1  # the last hit of the copy's finished bursts
        for k, i in enumerate(indexes):
            if hits[i].at > cutoff:
                break
            following = indexes[k + 1] if k + 1 < len(indexes) else None
            if following is None or hits[following].at - hits[i].at > BURST_SECONDS:
                last = k
        for k, i in enumerate(indexes):
            ready[i] = k <= last
    return ready
