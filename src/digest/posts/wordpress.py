"""WordPress REST API JSON (``/wp-json/wp/v2/posts?_embed``) to ``PostData``, no I/O here.

The embedded terms give categories and tags, the embedded featured media the image, and the
``sticky`` flag marks the site's own featured posts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.errors import FeedError
from digest.posts.entries import (
    MAX_TITLE,
    ParsedFeed,
    PostData,
    clean_terms,
    first_image,
    is_http_url,
)
from digest.posts.sanitize import make_summary, plain_text, sanitize_html


def with_embed(url: str) -> str:
    """A WordPress posts URL with ``_embed`` added (for terms, media, authors); others as is."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not parts.path.rstrip("/").endswith("/wp/v2/posts") or any(k == "_embed" for k, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, ("_embed", "1")])))


def parse_wordpress(body: bytes, *, source: str, base_url: str | None = None) -> ParsedFeed:
    """Parse the JSON list of posts of the WordPress REST API."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedError(f"{source}: the JSON is malformed ({exc})") from None
    if isinstance(data, dict) and "code" in data and "message" in data:
        message = plain_text(str(data.get("message")))[:200]
        raise FeedError(f"{source}: WordPress answered with an error: {message}")
    if isinstance(data, dict) and "id" in data:
        data = [data]
    if not isinstance(data, list):
        raise FeedError(f"{source}: this JSON is not a list of WordPress posts")
    feed = ParsedFeed(kind="wordpress", link=_origin(base_url) if base_url else "")
    for item in data:
        post = _item_to_post(item, base_url) if isinstance(item, dict) else None
        if post is None:
            feed.skipped += 1
        else:
            feed.posts.append(post)
    if data and not feed.posts and not any(isinstance(i, dict) and "id" in i for i in data):
        raise FeedError(f"{source}: this JSON is not a list of WordPress posts")
    return feed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _rendered(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if isinstance(value, dict):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _gmt(value: Any) -> datetime | None:
    # *_gmt fields are UTC without a zone; the plain ones are site-local, so they are not used.
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _embedded(item: dict[str, Any], key: str) -> list[Any]:
    embedded = item.get("_embedded")
    value = embedded.get(key) if isinstance(embedded, dict) else None
    return value if isinstance(value, list) else []


def _item_to_post(item: dict[str, Any], base_url: str | None) -> PostData | None:
    title = plain_text(_rendered(item, "title"))[:MAX_TITLE]
    link = str(item.get("link") or "").strip()
    post_id = item.get("id")
    if not title or not is_http_url(link) or post_id is None:
        return None
    content_html = sanitize_html(_rendered(item, "content"), base_url=link)
    categories: list[str] = []
    tags: list[str] = []
    # wp:term is a list of lists of terms, one list per taxonomy.
    for group in _embedded(item, "wp:term"):
        for term in group if isinstance(group, list) else []:
            if not isinstance(term, dict):
                continue
            if term.get("taxonomy") == "category":
                categories.append(term.get("name", ""))
            elif term.get("taxonomy") == "post_tag":
                tags.append(term.get("name", ""))
    image_url, image_alt = None, ""
    media = _embedded(item, "wp:featuredmedia")
    if media and isinstance(media[0], dict) and is_http_url(media[0].get("source_url")):
        image_url = media[0]["source_url"].strip()
        image_alt = plain_text(media[0].get("alt_text") or "")
    if image_url is None:
        image_url, image_alt = first_image(content_html)
    authors = _embedded(item, "author")
    author = authors[0].get("name", "") if authors and isinstance(authors[0], dict) else ""
    published = _gmt(item.get("date_gmt"))
    return PostData(
        guid=f"wp:{_origin(link)}/{post_id}",
        title=title,
        link=link,
        summary=make_summary(_rendered(item, "excerpt"), content_html),
        content_html=content_html,
        author=plain_text(str(author))[:300],
        categories=clean_terms(categories),
        tags=clean_terms(tags),
        image_url=image_url,
        image_alt=(image_alt or title)[:500],
        published_at=published,
        updated_at=_gmt(item.get("modified_gmt")) or published,
        sticky=bool(item.get("sticky")),
    )
