"""The links of a mail rewritten in both parts (``compose/tracked_links.py``), UTM parameters
(``compose/utm.py``) and the tracked variant's rule of what leaves digest (pure)."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date
from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from digest.compose.mail_links import is_outside, with_tracking
from digest.compose.tracked_links import add_before_body_end, attribute_value, hrefs, rewrite
from digest.compose.utm import Campaign, digest_label, with_utm
from digest.mail.content import MailContent
from digest.tracking import MailKind, MailRef, read_token, tracked_url

SECRET = b"s" * 32
BASE = "https://digest.example.com"
MAIL = MailRef(MailKind.EDITION, 12)
TRACK = "%%TRACK%%"

_URL_CHARS = st.sampled_from([*"abcxyz0189-._~/?#[]@!$&'()*+,;=%", "é", "&amp;", "<"])
paths = st.lists(_URL_CHARS, max_size=30).map("".join)
outside_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["news.example.org", "a.example", "127.0.0.1:8080"]),
    paths,
)
own_urls = st.builds(
    lambda p: f"{BASE}/archive/{p}", st.from_regex(r"[0-9a-z/]{0,10}", fullmatch=True)
)
other_links = st.sampled_from(
    ["mailto:desk@example.org", "%%UNSUBSCRIBE_URL%%", "%%PREFERENCES_URL%%", "#top", "/r/x"]
)
any_url = st.one_of(outside_urls, own_urls, other_links)
words = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).map(html_lib.escape)


def track(url: str) -> str | None:
    return tracked_url(BASE, SECRET, MAIL, url, TRACK) if is_outside(url, BASE) else None


def anchor(url: str, quote: str, before: str, after: str) -> str:
    value = html_lib.escape(url, quote=True)
    return f"<a{before} href={quote}{value}{quote}{after}>link</a>"


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    """An HTML part, a text part that prints the same links, and the links in order."""
    urls = draw(st.lists(any_url, max_size=6))
    html_parts, text_parts = ["<html><body>"], []
    for url in urls:
        quote = draw(st.sampled_from(['"', "'"]))
        if quote == "'" and "'" in url:
            quote = '"'
        before = draw(st.sampled_from(["", ' class="x"', " title='a > b href=\"nope\"'"]))
        after = draw(st.sampled_from(["", ' style="color: red"', " data-x"]))
        html_parts.append(draw(words) + anchor(url, quote, before, after))
        text_parts.append(draw(words).replace("http", "h") + "\n  " + url + "\n")
    html_parts.append('<img src="https://img.example/x.png"></body></html>')
    return "".join(html_parts), "".join(text_parts), urls


@given(documents())
def test_hrefs_are_read_exactly_as_written_before_escaping(doc: tuple[str, str, list[str]]) -> None:
    html, _, urls = doc
    assert hrefs(html) == urls


@given(documents())
def test_no_change_leaves_both_parts_byte_for_byte(doc: tuple[str, str, list[str]]) -> None:
    html, text, _ = doc
    assert rewrite(html, text, lambda url: None) == (html, text)
    assert rewrite(html, text, lambda url: url) == (html, text)


@given(documents())
def test_every_outside_link_is_tracked_and_decodes_to_the_original(
    doc: tuple[str, str, list[str]],
) -> None:
    html, text, urls = doc
    new_html, new_text = rewrite(html, text, track)
    found = hrefs(new_html)
    assert len(found) == len(urls)
    for original, now in zip(urls, found, strict=True):
        if is_outside(original, BASE):
            assert now.startswith(BASE + "/r/") and now.endswith(TRACK)
            token = now[len(BASE + "/r/") : -len(TRACK)]
            assert read_token(SECRET, token).url == original
            assert read_token(SECRET, token).mail == MAIL
        else:
            assert now == original
    # Nothing else changed: putting each original back gives the documents we started with.
    back = {tracked_url(BASE, SECRET, MAIL, u, TRACK): u for u in urls if is_outside(u, BASE)}
    restored_html = new_html
    restored_text = new_text
    for tracked, original in back.items():
        restored_text = restored_text.replace(tracked, original)
        restored_html = restored_html.replace(tracked, html_lib.escape(original, quote=True))
    assert restored_text == text
    assert restored_html == html
    for url in urls:
        if is_outside(url, BASE):
            # The text part's own line for the link now holds its tracked URL.
            assert "\n  " + url + "\n" not in new_text


def test_a_longer_url_that_starts_with_a_shorter_one_is_not_cut() -> None:
    short, long = "https://x.example/a", "https://x.example/a?b=1"
    html = anchor(short, '"', "", "") + anchor(long, '"', "", "")
    text = f"{long}\n{short}.\n({short})\n{short}x\n"
    new_html, new_text = rewrite(html, text, lambda u: "T(" + u + ")")
    assert hrefs(new_html) == ["T(" + short + ")", "T(" + long + ")"]
    assert new_text == f"T({long})\nT({short}).\n(T({short}))\n{short}x\n"


def test_an_escaped_ampersand_reaches_the_token_unescaped() -> None:
    html = '<p><a class="t" href="https://x.example/?a=1&amp;b=2&copy=3">x</a></p>'
    new_html, _ = rewrite(html, "", track)
    token = hrefs(new_html)[0][len(BASE + "/r/") : -len(TRACK)]
    # "&copy" without its ";" is not a reference in an attribute: the browser keeps it.
    assert read_token(SECRET, token).url == "https://x.example/?a=1&b=2&copy=3"
    assert attribute_value("a&amp;b&#38;c&#x26;d&nbsp") == "a&b&c&d&nbsp"


def test_only_links_are_rewritten_not_images_or_lookalike_text() -> None:
    html = (
        '<link href="https://fonts.example/f.css"><img src="https://i.example/1.png">'
        "<p>&lt;a href=&quot;https://x.example/&quot;&gt;</p><abbr href='https://x.example/'>"
        '<area shape="rect" href="https://map.example/">'
    )
    new_html, _ = rewrite(html, "", track)
    assert new_html.count("/r/") == 1 and "map.example" not in new_html
    assert "https://fonts.example/f.css" in new_html and "https://i.example/1.png" in new_html


def test_unquoted_href_gets_quotes() -> None:
    new_html, _ = rewrite("<a href=https://x.example/a>x</a>", "", lambda u: u + "?q=1&r")
    assert new_html == '<a href="https://x.example/a?q=1&amp;r">x</a>'


def test_the_pixel_goes_before_the_end_of_the_body() -> None:
    assert add_before_body_end("<html><body>x</BODY></html>", "<img>") == (
        "<html><body>x<img></BODY></html>"
    )
    assert add_before_body_end("<p>x</p>", "<img>") == "<p>x</p><img>"


# -- UTM -------------------------------------------------------------------------------------


@given(outside_urls)
def test_utm_keeps_the_url_and_its_fragment_and_adds_three_parameters(url: str) -> None:
    tagged = with_utm(url, "morning", "daily-2026-12-02")
    rest, _, fragment = url.partition("#")
    if "?" in rest and re.search(r"(^|[?&;])utm_", rest.split("?", 1)[1], re.IGNORECASE):
        assert tagged == url
        return
    tail = ("#" + fragment) if "#" in url else ""
    assert tagged.endswith(tail)
    head = tagged[: len(tagged) - len(tail)]
    assert head.startswith(rest)
    added = head[len(rest) :].lstrip("?&")
    assert added == "utm_source=morning&utm_medium=email&utm_campaign=daily-2026-12-02"


def test_utm_on_plain_urls() -> None:
    tag = Campaign("city-news", digest_label("weekly", date(2026, 12, 2))).tag
    assert tag("https://x.example/a") == (
        "https://x.example/a?utm_source=city-news&utm_medium=email&utm_campaign=weekly-2026-12-02"
    )
    assert tag("https://x.example/a?id=1#c") == (
        "https://x.example/a?id=1&utm_source=city-news&utm_medium=email"
        "&utm_campaign=weekly-2026-12-02#c"
    )
    assert tag("https://x.example/a?") == (
        "https://x.example/a?utm_source=city-news&utm_medium=email&utm_campaign=weekly-2026-12-02"
    )
    assert tag("https://x.example/a?UTM_Source=rss") == "https://x.example/a?UTM_Source=rss"
    assert tag("mailto:x@example.org") == "mailto:x@example.org"
    query = dict(parse_qsl(urlsplit(tag("http://x.example/?a=b")).query))
    assert query == {
        "a": "b",
        "utm_source": "city-news",
        "utm_medium": "email",
        "utm_campaign": "weekly-2026-12-02",
    }


def test_what_counts_as_outside() -> None:
    assert is_outside("https://news.example.org/story", BASE)
    assert is_outside("HTTP://digest.example.com.evil.example/", BASE)
    assert not is_outside(BASE + "/archive/3", BASE)
    assert not is_outside(BASE, BASE)
    assert not is_outside("mailto:a@example.org", BASE)
    assert not is_outside("%%UNSUBSCRIBE_URL%%", BASE)


def test_a_link_with_a_placeholder_in_it_stays_untracked(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(base_url=BASE)
    html = (
        '<a href="https://survey.example/?e=%%EMAIL%%">Survey</a>'
        '<a href="https://news.example.org/a">A</a>'
    )
    text = "https://survey.example/?e=%%EMAIL%%\nhttps://news.example.org/a\n"
    done = with_tracking(MailContent("S", text, html), settings, MAIL)
    assert done.tracked_html is not None and done.tracked_text is not None
    assert hrefs(done.tracked_html)[0] == "https://survey.example/?e=%%EMAIL%%"
    assert hrefs(done.tracked_html)[1].startswith(BASE + "/r/")
    assert done.tracked_text.startswith("https://survey.example/?e=%%EMAIL%%\n" + BASE + "/r/")
    # The untracked variant stays as rendered; with tracking off there is no tracked one.
    assert (done.text, done.html) == (text, html)
    off = with_tracking(MailContent("S", text, html), make_settings(tracking="off"), MAIL)
    assert not off.tracked and off.tracked_html is None
