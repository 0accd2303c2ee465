"""Adding a feed: what was given is fetched once, and a site's page leads to the site's feed.

A URL that answers with a feed is stored as given. A web page is searched for the feeds it
names (``<link rel="alternate" type="application/rss+xml|application/atom+xml">``), then for
WordPress's usual places (``/feed/``, ``/wp-json/wp/v2/posts``); the first candidate that
answers with a feed is stored. Anything else is refused with the reason, so a typo or a 404
never becomes a feed that fails every poll.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urljoin

from sqlmodel import Session

from digest.config import Settings
from digest.db import Database
from digest.errors import FeedError
from digest.posts import feeds
from digest.posts.fetch import FetchResult, check_url
from digest.posts.parse import parse_source
from digest.posts.poll import fetch_source, policy_for

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml"})
WORDPRESS_PATHS = ("/feed/", "/wp-json/wp/v2/posts")
# A page may name a feed per category or comment thread; the site's own comes first.
MAX_LINKS = 3
Via = Literal["given", "link", "wordpress"]


@dataclass(frozen=True)
class PageLinks:
    """What a fetched page says about feeds: the ones it names, and whether it is HTML."""

    feeds: list[str]
    is_html: bool


@dataclass(frozen=True)
class FoundFeed:
    """The feed URL to store, and how it was found (``page`` is the URL given, if not it)."""

    url: str
    via: Via = "given"
    page: str | None = None


@dataclass(frozen=True)
class AddedFeed:
    """The outcome of ``digest feeds add``: the feed stored, and whether it is new."""

    found: FoundFeed
    created: bool


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.feeds: list[str] = []
        self.is_html = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("html", "head", "body"):
            self.is_html = True
        values = {name: (value or "").strip() for name, value in attrs}
        href = values.get("href", "")
        if tag == "base" and self.base is None and href:
            self.base = href
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").split(";", 1)[0].strip().lower()
        if tag == "link" and "alternate" in rels and kind in FEED_TYPES and href:
            self.feeds.append(href)


def page_links(body: bytes, page_url: str) -> PageLinks:
    """The RSS and Atom feeds a page names, as absolute http(s) URLs, in the page's order."""
    collector = _LinkCollector()
    collector.feed(body.decode("utf-8", "replace"))
    collector.close()
    base = urljoin(page_url, collector.base or "")
    found = (urljoin(base, href) for href in collector.feeds)
    # The page is anyone's: a URL with control characters would reach the terminal in a message.
    urls = [u for u in found if u.lower().startswith(("http://", "https://")) and u.isprintable()]
    return PageLinks(feeds=list(dict.fromkeys(urls)), is_html=collector.is_html)


def _check_is_feed(fetched: FetchResult, source: str) -> None:
    parse_source(
        fetched.body, source=source, content_type=fetched.content_type, base_url=fetched.url
    )


async def find_feed(settings: Settings, url: str) -> FoundFeed:
    """The feed behind URL: URL itself when it is one, else the feed its page leads to."""
    url = url.strip()
    fetched = await fetch_source(settings, url)
    try:
        _check_is_feed(fetched, url)
    except FeedError as exc:
        not_a_feed = exc
    else:
        return FoundFeed(url=url)
    page = page_links(fetched.body, fetched.url)
    named = page.feeds[:MAX_LINKS]
    guesses = [urljoin(fetched.url, path) for path in WORDPRESS_PATHS] if page.is_html else []
    candidates = [c for c in dict.fromkeys([*named, *guesses]) if c not in (url, fetched.url)]
    if not candidates:
        raise not_a_feed  # not a page either: its own reason says what is wrong
    tried: list[str] = []
    for candidate in candidates:
        try:
            _check_is_feed(await fetch_source(settings, candidate), candidate)
        except FeedError as exc:
            tried.append(str(exc))
            continue
        return FoundFeed(url=candidate, via="link" if candidate in named else "wordpress", page=url)
    raise FeedError(
        f"{url}: this is a web page, not a feed, and it leads to no feed (tried {'; '.join(tried)})"
    )


def add_checked_feed(db: Database, settings: Settings, url: str) -> AddedFeed:
    """``digest feeds add``: store URL's feed once a fetch shows it is one; FeedError if not."""
    check_url(url, policy_for(settings))
    with db.transaction() as session:
        if feeds.get_feed(session, url) is not None:
            return AddedFeed(FoundFeed(url=url.strip()), created=False)
    found = asyncio.run(find_feed(settings, url))
    with db.transaction() as session:
        _row, created = feeds.add_feed(session, found.url)
    return AddedFeed(found, created)


def add_feed_in(session: Session, settings: Settings, url: str) -> AddedFeed:
    """``add_checked_feed`` within the caller's transaction (the desk's request holds one, and
    on SQLite a second would wait for it). Not for a running event loop: it runs the fetch in
    one of its own."""
    check_url(url, policy_for(settings))
    if feeds.get_feed(session, url) is not None:
        return AddedFeed(FoundFeed(url=url.strip()), created=False)
    found = asyncio.run(find_feed(settings, url))
    _row, created = feeds.add_feed(session, found.url)
    return AddedFeed(found, created)
