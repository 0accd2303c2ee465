"""What every parser makes: ``PostData`` and ``ParsedFeed``, and the rules they share.

The RSS/Atom parser (``posts.syndication``) and the WordPress one (``posts.wordpress``) both
import from here, never from each other: a link is an identity, an image is taken from content,
and terms are cleaned the same way whichever format a post came in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.posts.sanitize import plain_text

MAX_TITLE = 1000
MAX_URL = 2048
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_ATTR = re.compile(r"""\b(src|alt)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


@dataclass
class PostData:
    """One post as a feed gave it, already cleaned; ``published_at`` None means "no date given"."""

    guid: str
    title: str
    link: str
    summary: str = ""
    content_html: str = ""
    author: str = ""
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    image_url: str | None = None
    image_alt: str = ""
    published_at: datetime | None = None
    updated_at: datetime | None = None
    sticky: bool = False


@dataclass
class ParsedFeed:
    """What a source held: its title and link, its posts, and what was skipped or odd."""

    kind: str
    title: str = ""
    link: str = ""
    posts: list[PostData] = field(default_factory=list)
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def is_http_url(url: str | None) -> bool:
    """Whether the URL is an absolute http(s) URL with a host."""
    if not url or len(url) > MAX_URL:
        return False
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def canonical_link(url: str) -> str:
    """The link used as an identity: no fragment and no utm_* tracking parameters."""
    parts = urlsplit(url.strip())
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_")
    ]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), "")
    )


def first_image(content_html: str) -> tuple[str | None, str]:
    """The src and alt of the first http(s) <img> of (sanitised) content."""
    for tag in _IMG.findall(content_html or ""):
        attrs = {
            m.group(1).lower(): m.group(3) or m.group(4) or m.group(5) or ""
            for m in _ATTR.finditer(tag)
        }
        src = plain_text(attrs.get("src", ""))
        if is_http_url(src):
            return src, plain_text(attrs.get("alt", ""))
    return None, ""


def clean_terms(values: list[Any]) -> list[str]:
    """Category or tag names as plain text, de-duplicated case-insensitively, order kept."""
    seen: dict[str, str] = {}
    for value in values:
        text = plain_text(str(value or ""))[:100]
        if text and text.casefold() not in seen:
            seen[text.casefold()] = text
    return list(seen.values())
