"""The shipped sample feed: parses, carries the seed article, and its dates follow ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.posts.featuring import is_featured
from digest.posts.parse import parse_source
from digest.posts.samples import load_sample_feed, sample_feed_bytes

SEED = Path("/work/shared/seeds/000_21a309fd9649c32f.txt")
NOW = datetime(2031, 3, 4, 12, 30, tzinfo=UTC)


def test_sample_feed_is_a_realistic_rss_feed() -> None:
    feed = parse_source(load_sample_feed(NOW), source="sample")
    assert feed.kind == "rss20" and feed.skipped == 0 and not feed.warnings
    assert 8 <= len(feed.posts) <= 12
    categories = {c for p in feed.posts for c in p.categories}
    assert {"World", "Politics", "Business", "Technology", "Sports"} <= categories
    featured = [p for p in feed.posts if "Don't Miss" in p.categories]
    assert 1 <= len(featured) <= 2
    assert all(p.image_url and p.image_url.startswith("https://") for p in feed.posts)
    assert all(p.image_alt and p.summary and p.author for p in feed.posts)


def test_seed_article_is_among_the_posts_with_its_full_text() -> None:
    feed = parse_source(load_sample_feed(NOW), source="sample")
    seed = next(p for p in feed.posts if p.title.startswith("PM Kishida"))
    assert seed.title == "PM Kishida: Japan & NATO to Release Security Document"
    assert seed.summary.startswith("Japanese Prime Minister Fumio Kishida announced on Tuesday")
    text = SEED.read_text(encoding="utf-8") if SEED.exists() else ""
    last = "promoting regional stability."
    assert last in seed.content_html and (not text or last in text)
    assert "Individually Tailored Partnership Program" in seed.content_html


def test_dates_are_relative_to_now() -> None:
    feed = parse_source(load_sample_feed(NOW), source="sample")
    dates = [p.published_at for p in feed.posts]
    assert dates == sorted(dates, reverse=True)
    assert NOW - timedelta(hours=1, minutes=1) <= dates[0] <= NOW - timedelta(minutes=59)
    assert NOW - timedelta(days=2, hours=2) <= dates[-1] < NOW - timedelta(days=1, hours=12)
    later = parse_source(load_sample_feed(NOW + timedelta(days=400)), source="sample")
    assert later.posts[0].published_at > dates[0] + timedelta(days=399)


def test_the_shipped_file_is_packaged_and_some_posts_are_featured() -> None:
    assert sample_feed_bytes().startswith(b"<?xml")
    feed = parse_source(load_sample_feed(NOW), source="sample")
    featured = [p for p in feed.posts if is_featured(_Row(p.categories), ["Don't Miss"], NOW)]
    assert featured


class _Row:
    def __init__(self, categories: list[str]) -> None:
        self.categories = categories
        self.sticky = False
        self.editor_featured = None
        self.featured_until = None
