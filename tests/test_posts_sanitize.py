"""The sanitiser: an allowlist for content, plain text for titles and summaries, and a property
test that no script, event handler or javascript:/data: URL ever gets through."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.posts.sanitize import (
    first_paragraph,
    make_summary,
    plain_text,
    sanitize_html,
    truncate_words,
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def tags_of(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser.tags


def test_scripts_styles_and_handlers_go() -> None:
    out = sanitize_html(
        '<p onclick="x()" style="color:red">Hi</p><script>alert(1)</script>'
        "<style>p{}</style><iframe src='https://e.com'></iframe><form><input></form>"
        '<object data="x.swf"></object><embed src="x.swf">'
    )
    assert out == "<p>Hi</p>"


def test_links_keep_safe_schemes_and_get_rel() -> None:
    out = sanitize_html(
        '<a href="https://e.com/a" target="_blank">ok</a> <a href="mailto:ed@e.com">mail</a> '
        '<a href="javascript:alert(1)">js</a> <a href="data:text/html,x">data</a> '
        '<a href="JaVaScRiPt&#58;alert(1)">enc</a> <a href="vbscript:x">vb</a>'
    )
    links = [attrs for tag, attrs in tags_of(out) if tag == "a"]
    assert [a.get("href") for a in links] == [
        "https://e.com/a",
        "mailto:ed@e.com",
        None,
        None,
        None,
        None,
    ]
    assert all(a["rel"] == "noopener noreferrer" for a in links)
    assert "target" not in out


def test_images_keep_src_alt_size_over_http_only() -> None:
    out = sanitize_html(
        '<img src="https://e.com/a.jpg" alt="A" width="10" height="5" class="x" loading="lazy">'
        '<img src="data:image/png;base64,AAAA" alt="d"><img src="mailto:x@y.z" alt="m">'
    )
    imgs = [attrs for tag, attrs in tags_of(out) if tag == "img"]
    assert imgs[0] == {"src": "https://e.com/a.jpg", "alt": "A", "width": "10", "height": "5"}
    assert "src" not in imgs[1] and "src" not in imgs[2]


def test_relative_urls_resolved_against_the_post_or_dropped() -> None:
    html = '<a href="/about">a</a><img src="pic.jpg">'
    resolved = sanitize_html(html, base_url="https://e.com/news/story.html")
    assert 'href="https://e.com/about"' in resolved
    assert 'src="https://e.com/news/pic.jpg"' in resolved
    assert "href" not in sanitize_html('<a href="/about">a</a>')


def test_plain_text() -> None:
    assert plain_text("<b>Tom &amp; Jerry</b>\n\n  &#8220;live&#8221;") == "Tom & Jerry “live”"
    assert plain_text("<p>a</p><p>b</p><script>x()</script>") == "a b"
    assert plain_text(None) == ""


def test_summary_from_excerpt_or_first_paragraph() -> None:
    assert make_summary("<p>Short excerpt [&hellip;]</p>", "<p>Body</p>") == "Short excerpt"
    assert make_summary("", "<h2>Head</h2><p></p><p>First <b>para</b>.</p><p>Second.</p>") == (
        "First para."
    )
    assert first_paragraph("no paragraphs, just text") == "no paragraphs, just text"


def test_truncate_at_word_boundary_with_ellipsis() -> None:
    text = " ".join(["newsroom"] * 60)
    cut = truncate_words(text, 300)
    assert len(cut) <= 300 and cut.endswith("newsroom…")
    assert truncate_words("short", 300) == "short"


DANGEROUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="  JAVASCRIPT:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    '<svg onload="alert(1)"><circle/></svg>',
    '<body onload="x()">',
    '<div style="background:url(javascript:alert(1))">s</div>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<form action="javascript:x()"><button formaction="javascript:y()">b</button></form>',
    '<object data="data:text/html,x"></object>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<a href="https://ok.example/" onmouseover="x()">ok</a>',
    "<p>text</p>",
    '"><script>',
    "<!--<script>-->",
    "<![CDATA[<script>]]>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<",
    ">",
    "&lt;script&gt;",
    "onclick=",
]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(DANGEROUS),
            st.text(alphabet="<>\"'=/ &;:ajvscriptondeglbx", max_size=12),
        ),
        max_size=12,
    )
)
def test_sanitiser_never_lets_dangerous_markup_through(parts: list[str]) -> None:
    out = sanitize_html("".join(parts), base_url="https://site.example/post")
    assert "<script" not in out.lower()
    for tag, attrs in tags_of(out):
        assert tag not in {"script", "style", "iframe", "form", "object", "embed", "svg", "math"}
        for name, value in attrs.items():
            assert not name.lower().startswith("on"), (tag, name)
            assert name != "style"
            squashed = "".join(value.split()).lower()
            assert not squashed.startswith(("javascript:", "data:", "vbscript:")), (tag, value)
