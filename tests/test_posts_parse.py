"""Each feed shape real sites produce becomes clean ``PostData``; broken input, a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import FeedError
from digest.posts.entries import ParsedFeed, canonical_link
from digest.posts.parse import parse_source

FEEDS = Path(__file__).parent / "feeds"


def parse(name: str, **kwargs: str) -> ParsedFeed:
    return parse_source((FEEDS / name).read_bytes(), source=name, **kwargs)


def test_rss2_with_enclosure_media_and_content() -> None:
    feed = parse("rss2_media.xml")
    assert feed.kind == "rss20"
    assert feed.title == "Metro Herald – Latest"
    assert feed.skipped == 2  # one without a title, one without a link
    tram, rain, museum = feed.posts
    assert tram.guid == "https://metro.example.org/?p=9001"
    assert tram.title == "City Council Approves New Tram Line"
    assert tram.author == "Ana Silva"
    assert tram.categories == ["Local", "Don’t Miss"]
    assert tram.published_at == datetime(2026, 11, 28, 16, 30, tzinfo=UTC)
    assert tram.summary == "The 12 km line will link the airport with the old town by 2030."
    assert tram.image_url == "https://metro.example.org/wp-content/uploads/tram.jpg"  # enclosure
    html = tram.content_html
    for bad in ("<script", "onclick", "onerror", "javascript:", "<iframe"):
        assert bad not in html
    assert 'href="https://metro.example.org/2026/11/plans/"' in html
    assert rain.image_url == "https://cdn.metro.example.org/rain.jpg"  # media:content
    assert rain.summary == "Up to 60 mm of rain & strong winds are forecast."
    assert museum.image_url == "https://cdn.metro.example.org/museum-thumb.jpg"  # thumbnail
    # A bare guid is namespaced by the site, so two feeds' "4471"s never collide.
    assert museum.guid == "https://metro.example.org#museum-reopens-4471"


def test_atom_with_xhtml_content() -> None:
    feed = parse("atom_xhtml.xml")
    assert feed.kind == "atom10"
    strike, ferry = feed.posts
    assert strike.title == "Port Strike Ends After Ten Days"
    assert strike.guid == "tag:ledger.example.net,2026:post-311"
    assert strike.published_at == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    assert strike.updated_at == datetime(2026, 11, 28, 17, 30, tzinfo=UTC)
    assert strike.categories == ["Business", "Featured"]
    assert "<strong>40 ships</strong>" in strike.content_html
    assert (strike.image_url, strike.image_alt) == (
        "https://ledger.example.net/img/port.jpg",
        "Cranes at the port",
    )
    assert strike.summary == "Dock workers accepted a 6% raise on Saturday."
    assert ferry.summary == "Winter timetable starts Monday."  # first paragraph of the content
    assert ferry.published_at == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_wordpress_json_with_sticky_terms_and_media() -> None:
    feed = parse("wordpress_posts.json")
    assert feed.kind == "wordpress"
    assert feed.skipped == 1  # the draft without a link
    live, festival, weather = feed.posts
    assert live.guid == "wp:https://www.tribune.example.com/5120"
    assert live.title == "Election Night: Results “Too Close to Call”"
    assert live.sticky is True
    assert live.categories == ["Politics", "Elections"]
    assert live.tags == ["live"]
    assert live.author == "Sam O’Neil"
    assert live.image_url.endswith("/ballots.jpg") and live.image_alt == "Ballot boxes in a gym"
    assert live.published_at == datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    assert live.updated_at == datetime(2026, 11, 28, 14, 10, tzinfo=UTC)
    assert live.summary.endswith("42 districts …") and "[" not in live.summary
    assert "<script" not in live.content_html and "style=" not in live.content_html
    assert festival.sticky is False and festival.categories == ["DON’T MISS", "Culture"]
    assert festival.summary == "After a two-year break the harbour festival is back."
    assert weather.image_url is None


def test_rss1() -> None:
    feed = parse("rss1.rdf")
    assert feed.kind == "rss10"
    comet, bees = feed.posts
    assert comet.link == "https://science.example.com/comet"
    assert comet.author == "Lena Park" and comet.categories == ["Space"]
    assert comet.published_at == datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
    assert bees.guid == "https://science.example.com/bees"


def test_rss091_without_dates() -> None:
    feed = parse("rss091_nodates.xml")
    assert [p.published_at for p in feed.posts] == [None, None]  # the store uses first-seen
    assert feed.posts[0].guid == "http://gazette.example.org/fete.html"


def test_html_page_is_refused() -> None:
    with pytest.raises(FeedError, match="HTML page, not a feed"):
        parse("page.html")


def test_malformed_xml_is_refused() -> None:
    with pytest.raises(FeedError, match="not well-formed XML"):
        parse("malformed.xml")


def test_truncated_feed_is_refused_whole() -> None:
    body = (FEEDS / "rss2_media.xml").read_bytes()
    for cut in (len(body) // 3, len(body) - 40):
        with pytest.raises(FeedError, match=r"truncated|not well-formed"):
            parse_source(body[:cut], source="cut.xml")


def test_wrong_encoding_is_read_with_a_warning() -> None:
    body = (FEEDS / "rss2_media.xml").read_bytes()
    body = body.replace(b"City Council", "Café Council".encode("latin-1"))  # declared UTF-8
    feed = parse_source(body, source="enc.xml")
    assert feed.posts[0].title == "Café Council Approves New Tram Line"
    assert feed.warnings and "encoding" in feed.warnings[0]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"[{broken json", "JSON is malformed"),
        (b'{"code": "rest_no_route", "message": "No route"}', "WordPress answered with an error"),
        (b'{"hello": "world"}', "not a list of WordPress posts"),
        (b"just some text", "not an RSS or Atom feed"),
    ],
)
def test_not_feeds(body: bytes, words: str) -> None:
    with pytest.raises(FeedError, match=words):
        parse_source(body, source="x")


def test_canonical_link_drops_tracking_and_fragment() -> None:
    assert (
        canonical_link("HTTPS://Site.example/a?utm_source=rss&id=3#top")
        == "https://site.example/a?id=3"
    )


def test_trailing_junk_after_a_whole_feed_is_tolerated() -> None:
    body = (FEEDS / "rss1.rdf").read_bytes() + b"\n<!-- cache --><junk>"
    assert len(parse_source(body, source="junk.xml").posts) == 2
