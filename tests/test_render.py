"""Rendered digests and confirmation mails, checked as a reader's tools would see them."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import css_inline
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.addresses import clean_name
from digest.compose.render import CONFIRM_TEMPLATES, DigestRenderer
from digest.compose.select import Candidate, Limits, Profile, Selection, normalize_topics, select
from digest.compose.views import date_line, plain_summary
from digest.errors import TemplateProblem
from digest.mail.content import MailContent
from digest.mail.message import (
    EMAIL,
    NAME,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Personal,
    Sender,
    assemble,
)
from digest.mail.message_id import new_message_id
from digest.resources import templates_dir
from tests.support.programs import require, screenshot

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
DAY = date(2026, 11, 29)
ARCHIVE = "https://news.example.com/archive/7"
UNSUB = "https://news.example.com/unsubscribe/tok_UNSUB-123"
PREFS = "https://news.example.com/preferences/tok_PREFS-456"
TITLES = [
    "PM Kishida: Japan & NATO to Release Security Document",
    "Central Bank Holds Rates Steady as Inflation Cools",
    "City Council Approves New Bike Lanes Downtown",
    "Researchers Map the Deep Ocean Floor in Record Detail",
    "Championship Final Goes to Extra Time in Thriller",
    "New Exhibition Brings Renaissance Drawings to the Capital",
    "Heavy Snow Expected Across the North This Weekend",
]
SUMMARY = (
    "Japanese Prime Minister Fumio Kishida announced on Tuesday that Japan and NATO will "
    "issue a new security cooperation document during the trans-Atlantic alliance’s summit "
    "taking place in Lithuania."
)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


def make_posts(count: int = len(TITLES)) -> list[Candidate]:
    return [
        Candidate(
            id=i + 1,
            title=TITLES[i % len(TITLES)],
            link=f"https://news.example.com/2026/11/story-{i + 1}",
            summary=SUMMARY,
            topics=normalize_topics(["World"]),
            published_at=NOW - timedelta(hours=i + 1),
            first_seen_at=NOW - timedelta(hours=i + 1),
            featured=i < 2,
            image_url="https://news.example.com/img/{i}.jpg" if i < 2 else None,
            image_alt="",
            author="Staff reporter" if i % 2 else "",
        )
        for i in range(count)
    ]


def make_selection(posts: list[Candidate] | None = None) -> Selection:
    return select(make_posts() if posts is None else posts, Profile("daily"), NOW, Limits())


@pytest.fixture
def renderer(make_settings) -> DigestRenderer:  # type: ignore[no-untyped-def]
    return DigestRenderer(make_settings(site_name="The Daily Brief"))


@pytest.fixture
def sender(make_settings) -> Sender:  # type: ignore[no-untyped-def]
    settings = make_settings(DIGEST_FROM="The Daily Brief <news@example.com>")
    return Sender.from_settings(settings)


class Balance(HTMLParser):
    """Checks that every element opened is closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.metas: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")
        if tag == "meta":
            self.metas.append(dict(attrs))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> Balance:
    checker = Balance()
    checker.feed(html)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack, checker.stack
    return checker


def personal(html_or_text: str) -> str:
    return (
        html_or_text.replace(EMAIL, "ann@example.org")
        .replace(NAME, "Ann")
        .replace(UNSUBSCRIBE_URL, UNSUB)
        .replace(PREFERENCES_URL, PREFS)
    )


def test_date_line_reads_like_the_site() -> None:
    assert date_line(date(2026, 11, 29)) == "Sunday, November 29, 2026"
    assert date_line(date(2024, 5, 5)) == "Sunday, May 5, 2024"


def test_summaries_become_one_short_paragraph() -> None:
    assert plain_summary("<p>Hello &amp; <b>welcome</b></p>\n\n") == "Hello & welcome"
    long = plain_summary("word " * 200, limit=50)
    assert len(long) <= 51 and long.endswith("…")


def test_body_has_both_sections_in_both_parts(renderer: DigestRenderer) -> None:
    sel = make_selection()
    body = renderer.render_body(sel, cadence="daily", local_date=DAY, archive_url=ARCHIVE)
    assert body.post_ids == sel.post_ids
    assert body.content.subject.startswith(TITLES[0]) and "The Daily Brief" in body.content.subject
    html = parse_html(body.content.html)
    html_text = " ".join(" ".join(html.text).split())
    for part in (body.content.text, html_text):
        assert "The Daily Brief" in part
        assert "Sunday, November 29, 2026" in part
        assert part.index(TITLES[0]) < part.index(TITLES[2])  # Don't Miss before Latest
        assert "You get this daily digest because you subscribed to The Daily Brief" in part
    assert "Don't Miss" in html_text and "Latest Posts" in html_text
    assert "DON'T MISS" in body.content.text and "LATEST POSTS" in body.content.text
    # Same posts, same order, in both parts.
    text_links = re.findall(r"https://news\.example\.com/2026/11/story-\d+", body.content.text)
    html_links = [u for u in dict.fromkeys(html.links) if "/story-" in u]
    assert list(dict.fromkeys(text_links)) == html_links
    assert len(html_links) == len(sel.post_ids)


def test_footer_links_are_placeholders_and_the_web_version(renderer: DigestRenderer) -> None:
    body = renderer.render_body(make_selection(), cadence="weekly", local_date=DAY,
                                archive_url=ARCHIVE)  # fmt: skip
    links = parse_html(body.content.html).links
    assert UNSUBSCRIBE_URL in links and PREFERENCES_URL in links and ARCHIVE in links
    assert (
        UNSUBSCRIBE_URL in body.content.text
        and PREFERENCES_URL in body.content.text
        and EMAIL in body.content.text
    )
    assert "weekly digest" in body.content.text


def test_html_works_in_mail_clients(renderer: DigestRenderer) -> None:
    body = renderer.render_body(make_selection(), cadence="daily", local_date=DAY)
    html = parse_html(body.content.html)
    metas = {m.get("name"): m.get("content") for m in html.metas}
    assert metas["color-scheme"] == "light dark"
    assert "width=device-width" in (metas["viewport"] or "")
    assert 'width="600"' in body.content.html
    assert "prefers-color-scheme: dark" in body.content.html  # the @media rules survive inlining
    assert 'class="preheader"' in body.content.html
    assert html.images, "featured posts show their picture"
    for img in html.images:
        assert img.get("width") and img.get("height") and img.get("alt")
    # CSS is inlined: the table cells carry their own style attributes.
    assert re.search(r'<td class="post[^"]*" style="[^"]*padding', body.content.html)


def test_text_part_is_wrapped_at_78_columns(renderer: DigestRenderer) -> None:
    posts = make_posts()
    long = Candidate(**{**posts[3].__dict__, "id": 99, "title": "A very long headline " * 8})
    body = renderer.render_body(make_selection([*posts, long]), cadence="daily", local_date=DAY)
    for line in body.content.text.splitlines():
        assert len(line) <= 78 or line.strip().startswith(("http", "%%")), line


def test_user_text_is_escaped_in_html(renderer: DigestRenderer) -> None:
    evil = Candidate(**{**make_posts()[3].__dict__, "title": '<script>alert("x")</script> & co'})
    body = renderer.render_body(make_selection([evil]), cadence="daily", local_date=DAY)
    assert "<script>" not in body.content.html
    assert "&lt;script&gt;" in body.content.html
    parse_html(body.content.html)


def test_same_selection_shares_one_body(renderer: DigestRenderer) -> None:
    first = renderer.render_body(make_selection(), cadence="daily", local_date=DAY)
    again = renderer.render_body(make_selection(), cadence="daily", local_date=DAY)
    assert again is first
    other_day = renderer.render_body(
        make_selection(), cadence="daily", local_date=DAY.replace(day=30)
    )
    other_cadence = renderer.render_body(make_selection(), cadence="weekly", local_date=DAY)
    fewer = renderer.render_body(make_selection(make_posts(3)), cadence="daily", local_date=DAY)
    keys = {first.key, other_day.key, other_cadence.key, fewer.key}
    assert len(keys) == 4
    assert "Monday, November 30, 2026" in other_day.content.html


def test_operator_templates_override_file_by_file(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mytemplates"
    folder.mkdir()
    (folder / "digest_subject.txt").write_text("Morning news: {{ count }} stories\n")
    plain = DigestRenderer(make_settings())
    custom = DigestRenderer(make_settings(templates_dir=folder))
    body = custom.render_body(make_selection(), cadence="daily", local_date=DAY)
    assert body.content.subject == f"Morning news: {len(make_selection().post_ids)} stories"
    assert "Latest Posts" in body.content.html  # the HTML still comes from the shipped set
    assert custom.version != plain.version
    default = plain.render_body(make_selection(), cadence="daily", local_date=DAY)
    assert default.key != body.key


def test_broken_override_stops_the_renderer_with_one_line(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "digest.html").write_text("<p>{% for post in latest %}</p>\n")
    with pytest.raises(TemplateProblem) as caught:
        DigestRenderer(make_settings(templates_dir=folder))
    assert "digest.html" in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 78


def test_override_with_an_unknown_variable_fails_clearly(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "typo"
    folder.mkdir()
    (folder / "digest_subject.txt").write_text("{{ site_nmae }}\n")
    renderer = DigestRenderer(make_settings(templates_dir=folder))
    with pytest.raises(TemplateProblem, match="site_nmae"):
        renderer.render_body(make_selection(), cadence="daily", local_date=DAY)


def test_feed_text_cannot_smuggle_a_placeholder(renderer: DigestRenderer) -> None:
    sneaky = Candidate(
        **{
            **make_posts()[3].__dict__,
            "title": "Win %%UNSUBSCRIBE_URL%% now",
            "summary": "%%EMAIL%%",
        }
    )
    body = renderer.render_body(make_selection([sneaky]), cadence="daily", local_date=DAY)
    assert "Win %%UNSUBSCRIBE_URL%%" not in body.content.text + body.content.html
    assert body.content.text.count(EMAIL) == 1  # only the footer's


def test_empty_selection_still_renders(renderer: DigestRenderer) -> None:
    body = renderer.render_body(make_selection([]), cadence="daily", local_date=DAY)
    assert body.content.subject == "The Daily Brief: your daily digest"
    parse_html(body.content.html)


def test_shipped_templates_are_found() -> None:
    folder = templates_dir()
    for name in ("digest_subject.txt", "digest.txt", "digest.html", "confirm_subject.txt",
                 "confirm.txt", "confirm.html"):  # fmt: skip
        assert (folder / name).is_file()


def test_web_version_has_no_personal_links(renderer: DigestRenderer) -> None:
    page = renderer.render_web_version(make_selection(), cadence="daily", local_date=DAY)
    parse_html(page)
    assert "%%" not in page
    assert "Unsubscribe" not in page and "Preferences" not in page
    assert TITLES[0].replace("&", "&amp;") in page


def test_confirmation_mail(renderer: DigestRenderer) -> None:
    url = "https://news.example.com/confirm/tok_abc"
    mail = renderer.render_confirm(name="Zoë <b>", confirm_url=url)
    assert mail.subject == "Please confirm your subscription to The Daily Brief"
    for part in (mail.text, mail.html):
        assert url in part and "7 days" in part and "ignore" in part
    assert "Hello Zoë <b>," in mail.text
    assert "Zoë &lt;b&gt;" in mail.html
    assert "%%" not in mail.text + mail.html
    assert url in parse_html(mail.html).links


CONFIRM_NAMES = ["", "Ann", "Zoë <b>", 'O\'Brien & "Sons"', "a > b < c", "&amp; &lt;",
                 "  spaced   out  ", "Ünïcødé 名前 \u00a0x", "q7zDIGESTNAMEMARKz7q",
                 "%%NAME%%"]  # fmt: skip
CONFIRM_URLS = ["https://news.example.com/confirm/tok_abc",
                'https://news.example.com/c/a?b=1&c="2"<3>\'4\'']  # fmt: skip


def _confirm_from_templates(renderer: DigestRenderer, name: str, url: str) -> MailContent:
    """The confirmation mail rendered straight from the templates, as a reference."""
    context = {"site_name": renderer.site_name, "name": clean_name(name), "confirm_url": url,
               "expiry": "7 days"}  # fmt: skip
    subject, text, html = (renderer.env.get_template(n).render(context) for n in CONFIRM_TEMPLATES)
    inliner = css_inline.CSSInliner(keep_at_rules=True, minify_css=True,
                                    load_remote_stylesheets=False)  # fmt: skip
    return MailContent(subject=" ".join(subject.split()), text=text, html=inliner.inline(html))


@pytest.mark.parametrize("name", CONFIRM_NAMES)
@pytest.mark.parametrize("url", CONFIRM_URLS)
def test_confirmation_mail_filled_in_equals_a_full_render(
    renderer: DigestRenderer, name: str, url: str
) -> None:
    # Whatever the name and link hold, the mail must be what the templates give.
    renderer.render_confirm(name="warm", confirm_url="https://x.example/c/1")
    got = renderer.render_confirm(name=name, confirm_url=url)
    assert got == _confirm_from_templates(renderer, name, url)


def test_confirmation_override_that_transforms_the_name_is_rendered_in_full(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "shouty"
    folder.mkdir()
    (folder / "confirm_subject.txt").write_text("{{ name|upper }}, confirm {{ site_name }}\n")
    (folder / "confirm.txt").write_text(
        "{% if name == 'Ann' %}Hi Ann{% endif %} {{ confirm_url }}\n"
    )
    custom = DigestRenderer(make_settings(templates_dir=folder))
    for name in ("Ann", "Bob <b>"):
        mail = custom.render_confirm(name=name, confirm_url=CONFIRM_URLS[1])
        assert mail == _confirm_from_templates(custom, name, CONFIRM_URLS[1])
    assert mail.subject.startswith("BOB <B>, confirm")


def test_confirmation_override_with_the_link_in_a_script_block_stays_exact(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "confirm.html").write_text(
        '<html><body><p title="{{ name }}">{{ name }}</p>'
        '<script>var u = "{{ confirm_url }}";</script></body></html>\n'
    )
    custom = DigestRenderer(make_settings(templates_dir=folder))
    for name in CONFIRM_NAMES:
        for url in CONFIRM_URLS:
            got = custom.render_confirm(name=name, confirm_url=url)
            assert got == _confirm_from_templates(custom, name, url)


_INERT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~:/?#[]@!$()*+,;=%-",
    min_size=1,
    max_size=200,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tail=_INERT)
def test_an_unaddressed_confirmation_put_together_from_its_shape_is_a_full_render(
    renderer: DigestRenderer, tail: str
) -> None:
    # The common case, a form with no name: the mail is filled in, never rendered, and must
    # still be exactly what the templates give for that link.
    url = f"https://news.example.com/confirm/{tail}"
    assert renderer.render_confirm(name="", confirm_url=url) == _confirm_from_templates(
        renderer, "", url
    )


def test_confirmation_override_that_transforms_the_link_is_rendered_in_full(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "loud-link"
    folder.mkdir()
    (folder / "confirm.txt").write_text("Go to {{ confirm_url|upper }} or {{ confirm_url }}\n")
    custom = DigestRenderer(make_settings(templates_dir=folder))
    url = "https://news.example.com/confirm/abc"
    mail = custom.render_confirm(name="", confirm_url=url)
    assert mail.text == f"Go to {url.upper()} or {url}\n"
    assert mail == _confirm_from_templates(custom, "", url)


def _message(renderer: DigestRenderer, sender: Sender, **personal_kw: object) -> bytes:
    body = renderer.render_body(make_selection(), cadence="daily", local_date=DAY,
                                archive_url=ARCHIVE)  # fmt: skip
    values: dict[str, object] = {
        "to_email": "ann@example.org",
        "to_name": "Ann Smith",
        "message_id": new_message_id("example.com"),
        "date": datetime.now(UTC),
        "unsubscribe_url": UNSUB,
        "preferences_url": PREFS,
    }
    values.update(personal_kw)
    return assemble(
        body.content.subject, body.content.text, body.content.html, Personal(**values), sender
    )  # type: ignore[arg-type]


def test_whole_message_parses_back(renderer: DigestRenderer, sender: Sender) -> None:
    raw = _message(renderer, sender)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert not part.defects
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    text_part, html_part = msg.iter_parts()
    text = text_part.get_content().replace("\r\n", "\n")
    html = html_part.get_content()
    assert f"Unsubscribe: {UNSUB}" in text and "as ann@example.org." in text
    links = parse_html(html).links
    assert UNSUB in links and PREFS in links
    for title in TITLES:
        assert title in text
        assert title.replace("&", "&amp;") in html


def _spam_score(raw: bytes, home: Path) -> tuple[float, str]:
    binary = require("spamassassin", package="spamassassin")
    env = {**os.environ, "HOME": str(home)}  # its user_prefs go to a scratch folder
    # -L: local tests only (no DNS blocklists, no network), -t: report on the message.
    out = subprocess.run([binary, "-L", "-t"], input=raw, capture_output=True, timeout=120,
                         env=env, check=True).stdout.decode("utf-8", "replace")  # fmt: skip
    match = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.MULTILINE)
    assert match, out[:2000]
    return float(match.group(1)), out[out.find("Content analysis details") :]


def test_spamassassin_scores_a_digest_below_one(
    renderer: DigestRenderer, sender: Sender, tmp_path: Path
) -> None:
    score, report = _spam_score(_message(renderer, sender), tmp_path)
    assert score < 1.0, report


def test_spamassassin_scores_a_confirmation_below_one(
    renderer: DigestRenderer, sender: Sender, tmp_path: Path
) -> None:
    mail = renderer.render_confirm(name="Ann", confirm_url="https://news.example.com/confirm/t1")
    who = Personal("ann@example.org", "Ann", new_message_id("example.com"), datetime.now(UTC))
    score, report = _spam_score(assemble(mail.subject, mail.text, mail.html, who, sender), tmp_path)
    assert score < 1.0, report


@pytest.mark.browser
def test_chromium_renders_the_digest(renderer: DigestRenderer, tmp_path: Path) -> None:
    binary = require("chromium", "chromium-browser", package="chromium")
    body = renderer.render_body(make_selection(), cadence="daily", local_date=DAY)
    page = tmp_path / "digest.html"
    page.write_text(personal(body.content.html), encoding="utf-8")
    for width in (600, 375):
        png = tmp_path / f"digest-{width}.png"
        screenshot(binary, page.as_uri(), png, width, 1200)
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(data[16:20], "big") == width


text_pieces = st.lists(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(["<", ">", "&", '"', "'", "%%", "=?utf-8?b?", "\n", "  ", "x" * 100]),
    ),
    min_size=1,
    max_size=30,
).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(titles=st.lists(text_pieces, min_size=1, max_size=6), summary=text_pieces)
def test_any_post_text_gives_a_clean_message(
    renderer: DigestRenderer, sender: Sender, titles: list[str], summary: str
) -> None:
    posts = [
        Candidate(**{**make_posts()[3].__dict__, "id": i + 1, "title": t, "summary": summary,
                     "link": f"https://news.example.com/p/{i + 1}"})
        for i, t in enumerate(titles)
    ]  # fmt: skip
    body = renderer.render_body(make_selection(posts), cadence="daily", local_date=DAY)
    links = [u for u in dict.fromkeys(parse_html(body.content.html).links) if "/p/" in u]
    text_links = list(
        dict.fromkeys(re.findall(r"https://news\.example\.com/p/\d+", body.content.text))
    )
    assert links == text_links
    assert len(links) == len(posts)
    raw = assemble(
        body.content.subject,
        body.content.text,
        body.content.html,
        Personal("ann@example.org", "Ann", "<m1@example.com>", NOW, UNSUB, PREFS),
        sender,
    )
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert all(not part.defects for part in msg.walk())
    assert len(list(msg.iter_parts())) == 2


def test_each_post_is_wrapped_once_per_renderer(renderer: DigestRenderer) -> None:
    posts = make_posts()
    renderer.render_body(make_selection(posts), cadence="daily", local_date=DAY)
    views = dict(renderer._views.cached)
    renderer.render_body(make_selection(posts[2:]), cadence="weekly", local_date=DAY)
    assert all(renderer._views.cached[key] is view for key, view in views.items())


def test_a_full_digest_stays_under_gmail_clipping(renderer: DigestRenderer) -> None:
    long_summary = "A long summary sentence with plenty of words in it. " * 20
    posts = [
        Candidate(**{**p.__dict__, "title": p.title * 3, "summary": long_summary})
        for p in make_posts(30)
    ]
    body = renderer.render_body(make_selection(posts), cadence="daily", local_date=DAY)
    assert len(body.post_ids) == 12  # 2 featured + 10 latest
    assert len(body.content.html.encode()) < 102_000  # Gmail clips larger messages


def test_an_edited_headline_gets_a_new_body(renderer: DigestRenderer) -> None:
    posts = make_posts()
    before = renderer.render_body(make_selection(posts), cadence="daily", local_date=DAY)
    edited = [Candidate(**{**posts[0].__dict__, "title": "Corrected headline"}), *posts[1:]]
    after = renderer.render_body(make_selection(edited), cadence="daily", local_date=DAY)
    assert after.key != before.key
    assert (
        "Corrected headline" in after.content.html
        and "Corrected headline" not in before.content.html
    )


def test_a_feed_url_cannot_pull_personal_values_into_the_mail(make_settings) -> None:  # type: ignore[no-untyped-def]
    """A post link like https://x/?who=%%EMAIL%% once went out with each subscriber's address
    and never-expiring unsubscribe link filled in (found in review)."""
    from datetime import UTC, date, datetime

    from digest.compose.select import Candidate, Selection
    from digest.mail.message import Personal, Sender, assemble

    settings = make_settings()
    at = datetime(2026, 11, 29, tzinfo=UTC)
    post = Candidate(
        id=1, title="Story", link="https://evil.example/a?who=%%EMAIL%%&u=%%UNSUBSCRIBE_URL%%",
        summary="s", topics=frozenset(), published_at=at, first_seen_at=at,
        image_url="https://evil.example/p.gif?%%PREFERENCES_URL%%", image_alt="x",
    )  # fmt: skip
    selection = Selection((), (post,), at, at, skip=False)
    body = DigestRenderer(settings).render_body(selection, cadence="daily", local_date=date.today())
    personal = Personal(
        to_email="reader@example.org", to_name="R", message_id="<1@example.org>", date=at,
        unsubscribe_url="https://n.example/unsubscribe/SECRET",
        preferences_url="https://n.example/preferences/SECRET",
    )  # fmt: skip
    raw = assemble(
        body.content.subject,
        body.content.text,
        body.content.html,
        personal,
        Sender.from_settings(settings),
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in ("plain", "html"):
        content = message.get_body((part,)).get_content()  # type: ignore[union-attr]
        assert "evil.example/a?who=%25%25EMAIL%25%25" in content
        assert "who=reader@example.org" not in content
        assert "u=https://n.example/unsubscribe" not in content
        assert "p.gif?https" not in content


def test_operator_layout_frames_every_mail(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "framed"
    folder.mkdir()
    (folder / "layout.html").write_text(
        "<html><head><title>{% block title %}{% endblock %}</title></head><body>"
        "<p>OUR FRAME {{ width }}</p><table>{% block rows %}{% endblock %}</table></body></html>\n"
    )
    plain = DigestRenderer(make_settings())
    custom = DigestRenderer(make_settings(templates_dir=folder))
    body = custom.render_body(make_selection(), cadence="daily", local_date=DAY)
    mail = custom.render_confirm(name="Ann", confirm_url=CONFIRM_URLS[0])
    assert "OUR FRAME 600" in body.content.html and "Latest Posts" in body.content.html
    assert "OUR FRAME 560" in mail.html and CONFIRM_URLS[0] in mail.html
    parse_html(body.content.html)
    # The layout is part of the templates' version: no body rendered in the old frame is reused.
    assert custom.version != plain.version
    default = plain.render_body(make_selection(), cadence="daily", local_date=DAY)
    assert default.key != body.key and "OUR FRAME" not in default.content.html


def test_broken_layout_override_stops_the_renderer_with_one_line(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "broken-layout"
    folder.mkdir()
    (folder / "layout.html").write_text("<html>{% block rows %}</html>\n")
    with pytest.raises(TemplateProblem) as caught:
        DigestRenderer(make_settings(templates_dir=folder))
    assert "layout.html" in str(caught.value) and "\n" not in str(caught.value)


def test_an_edited_link_gets_into_the_body(renderer: DigestRenderer) -> None:
    posts = make_posts()
    renderer.render_body(make_selection(posts), cadence="daily", local_date=DAY)  # views made
    moved = [Candidate(**{**posts[0].__dict__, "link": "https://news.example.com/moved"}),
             *posts[1:]]  # fmt: skip
    after = renderer.render_body(make_selection(moved), cadence="daily", local_date=DAY)
    assert "https://news.example.com/moved" in after.content.html
    assert "https://news.example.com/moved" in after.content.text
