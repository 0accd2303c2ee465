"""RSS 0.9x/1.0/2.0 and Atom bytes to ``ParsedFeed`` with feedparser, no I/O here.

Everything a feed says is untrusted: HTML goes through ``sanitize``, text fields become plain
text, URLs must be http(s). Entries without a title or a link are skipped and counted.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser

from digest.errors import FeedError
from digest.posts.entries import (
    MAX_TITLE,
    MAX_URL,
    ParsedFeed,
    PostData,
    canonical_link,
    clean_terms,
    first_image,
    is_http_url,
)
from digest.posts.sanitize import make_summary, plain_text, sanitize_html


def parse_feed(
    body: bytes, *, source: str, content_type: str | None = None, base_url: str | None = None
) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0 or Atom bytes with feedparser."""
    headers = {"content-type": content_type or "application/xml"}
    if base_url:
        headers["content-location"] = base_url
    # Bytes, never a string: feedparser treats a string as a URL or path and would fetch it.
    # Its own sanitiser is off: nh3 does that job, with one allowlist for every source.
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    exc = parsed.get("bozo_exception")
    version = parsed.get("version") or ""
    if not parsed.entries:
        if _looks_like_html(body):
            raise FeedError(f"{source}: this is an HTML page, not a feed")
        if not version:
            raise FeedError(f"{source}: this is not an RSS or Atom feed")
        if isinstance(exc, SAXParseException):
            raise FeedError(_not_well_formed(source, exc))
    elif isinstance(exc, SAXParseException) and _is_truncated(exc, body):
        # The loose parser recovers the entries before the cut, but importing half a feed
        # would look like posts vanished; refuse it whole and try again next poll.
        raise FeedError(f"{source}: the feed is truncated ({exc.getMessage()})")
    feed = ParsedFeed(kind=version or "feed")
    feed.title = plain_text(parsed.feed.get("title"))[:500]
    feed.link = parsed.feed.get("link") if is_http_url(parsed.feed.get("link")) else ""
    if exc is not None and isinstance(exc, feedparser.CharacterEncodingOverride):
        feed.warnings.append(f"{source}: wrong character encoding declared ({exc})")
    site = feed.link or base_url or source
    for entry in parsed.entries:
        post = _entry_to_post(entry, site)
        if post is None:
            feed.skipped += 1
        else:
            feed.posts.append(post)
    if not feed.posts and isinstance(exc, SAXParseException):
        # Broken XML from which the loose parser salvaged nothing usable: say so, rather than
        # report a quiet "0 new" that hides a broken feed.
        raise FeedError(_not_well_formed(source, exc))
    return feed


def _is_truncated(exc: SAXParseException, body: bytes) -> bool:
    message = exc.getMessage()
    if message in ("no element found", "unclosed token"):
        return True
    if message == "junk after document element":
        return False  # the feed is whole; something trails it
    lines = body.rstrip().count(b"\n") + 1
    return (exc.getLineNumber() or 0) >= lines


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _entry_to_post(entry: Any, site: str) -> PostData | None:
    title = plain_text(entry.get("title"))[:MAX_TITLE]
    link = (entry.get("link") or "").strip()
    if not is_http_url(link):
        # Atom may list several links; take the first alternate that is http(s).
        link = next(
            (
                lk.get("href", "")
                for lk in entry.get("links", [])
                if lk.get("rel", "alternate") == "alternate" and is_http_url(lk.get("href"))
            ),
            "",
        )
    if not title or not link:
        return None
    contents = entry.get("content") or []
    raw_content = max((c.get("value", "") for c in contents), key=len, default="")
    raw_summary = entry.get("summary", "")
    content_html = sanitize_html(raw_content or raw_summary, base_url=link)
    # feedparser copies Atom content into summary when there is none; that is no excerpt.
    excerpt = raw_summary if raw_content and raw_summary.strip() != raw_content.strip() else None
    image_url, image_alt = _entry_image(entry, content_html)
    published = _when(entry.get("published_parsed")) or _when(dict.get(entry, "updated_parsed"))
    return PostData(
        guid=_guid(entry.get("id"), link, site),
        title=title,
        link=link,
        summary=make_summary(excerpt, content_html),
        content_html=content_html,
        author=plain_text(entry.get("author"))[:300],
        categories=clean_terms([t.get("term") or t.get("label") for t in entry.get("tags", [])]),
        image_url=image_url,
        image_alt=(image_alt or title)[:500],
        published_at=published,
        updated_at=_when(dict.get(entry, "updated_parsed")) or published,
    )


def _guid(raw: str | None, link: str, site: str) -> str:
    guid = (raw or "").strip()
    if not guid:
        return canonical_link(link)[:MAX_URL]
    if ":" not in guid:
        # Bare guids ("1234") are only unique within one feed; prefix the site so two feeds
        # numbering their items alike never overwrite each other's posts.
        return f"{site.rstrip('/')}#{guid}"[:MAX_URL]
    return guid[:MAX_URL]


def _entry_image(entry: Any, content_html: str) -> tuple[str | None, str]:
    candidates: list[str] = []
    candidates += [
        lk.get("href", "")
        for lk in entry.get("links", [])
        if lk.get("rel") == "enclosure" and lk.get("type", "").startswith("image/")
    ]
    candidates += [
        m.get("url", "")
        for m in entry.get("media_content", [])
        if m.get("medium") == "image"
        or m.get("type", "").startswith("image/")
        or (not m.get("medium") and not m.get("type"))
    ]
    candidates += [m.get("url", "") for m in entry.get("media_thumbnail", [])]
    src, alt = first_image(content_html)
    for url in candidates:
        if is_http_url(url):
            # The content's first <img> often is the same picture, with a real alt text.
            return url.strip(), alt if url.strip() == src else ""
    return src, alt


def _not_well_formed(source: str, exc: SAXParseException) -> str:
    return (
        f"{source}: the feed is not well-formed XML "
        f"(line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()})"
    )


def _looks_like_html(body: bytes) -> bool:
    head = body.lstrip()[:512].lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
