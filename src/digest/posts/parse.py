"""Which parser reads a source: WordPress REST JSON or any feed feedparser knows, no I/O here.

The parsers themselves sit side by side below this module (``posts.syndication`` for RSS and
Atom, ``posts.wordpress`` for the REST API) and never import it.
"""

from __future__ import annotations

from digest.errors import FeedError
from digest.posts.entries import ParsedFeed
from digest.posts.syndication import parse_feed
from digest.posts.wordpress import parse_wordpress


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    head = body.lstrip()[:1]
    return head in (b"[", b"{") or "json" in (content_type or "").lower()


def parse_source(
    body: bytes, *, source: str, content_type: str | None = None, base_url: str | None = None
) -> ParsedFeed:
    """Parse a fetched or read source: WordPress JSON or any feed feedparser knows.

    Raises FeedError with a one-line reason when the bytes are not a feed at all.
    """
    if not body.strip():
        raise FeedError(f"{source}: the response is empty, not a feed")
    if _looks_like_json(body, content_type):
        return parse_wordpress(body, source=source, base_url=base_url)
    return parse_feed(body, source=source, content_type=content_type, base_url=base_url)
