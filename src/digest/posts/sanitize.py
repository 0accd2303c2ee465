"""Untrusted HTML from feeds made safe: an nh3 allowlist for content, plain text for the rest.

Every HTML field a feed hands us may carry scripts, event handlers or ``javascript:`` links;
content goes through one allowlist, titles and summaries become plain text.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div",
        "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr",
        "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "time": {"datetime"},
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = ("http://", "https://")
# Tags whose text is code or chrome, not prose: dropped with their content.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "form",
        "noscript",
        "template",
        "svg",
        "math",
        "select",
        "textarea",
    }
)
SUMMARY_LENGTH = 300
_SPACE = re.compile(r"\s+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # url_schemes covers href and src alike, but images may only come over http(s): a mailto:
    # or data: image in a mail is either broken or a tracking trick.
    if tag == "img" and attribute == "src" and _SCHEME.match(value.strip()):
        return value if value.strip().lower().startswith(IMAGE_SCHEMES) else None
    # Relative URLs pass here; url_relative then resolves or drops them, and url_schemes
    # still checks every absolute one.
    return value


def sanitize_html(fragment: str | None, base_url: str | None = None) -> str:
    """The fragment with only safe tags, attributes and URLs left; relative URLs made absolute.

    Without a base URL relative links are dropped, since a mail has no page to resolve them.
    """
    if not fragment:
        return ""
    url_relative: str | tuple[str, str] = "deny"
    if base_url and base_url.lower().startswith(IMAGE_SCHEMES):
        url_relative = ("rewrite_with_base", base_url)
    cleaner = nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        url_schemes=set(LINK_SCHEMES),
        link_rel="noopener noreferrer",
        url_relative=url_relative,
        strip_comments=True,
    )
    return cleaner.clean(fragment).strip()


class _TextCollector(HTMLParser):
    """Collects the text of an HTML fragment, skipping scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "h1", "h2", "h3", "h4", "tr"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT and self._skip:
            self._skip -= 1
        elif tag in ("p", "div", "li", "h1", "h2", "h3", "h4", "tr"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(fragment: str | None) -> str:
    """The text of an HTML or plain fragment: tags stripped, entities decoded, spaces collapsed."""
    if not fragment:
        return ""
    collector = _TextCollector()
    collector.feed(fragment)
    collector.close()
    # Feeds double-escape now and then ("&amp;amp;"); one more unescape is harmless on text.
    text = html.unescape("".join(collector.parts))
    return _SPACE.sub(" ", text).strip()


def first_paragraph(fragment: str | None) -> str:
    """The text of the first non-empty <p> of the fragment, or of the whole fragment."""
    if not fragment:
        return ""
    for match in re.finditer(r"<p\b[^>]*>(.*?)</p\s*>", fragment, flags=re.I | re.S):
        text = plain_text(match.group(1))
        if text:
            return text
    return plain_text(fragment)


def truncate_words(text: str, limit: int = SUMMARY_LENGTH) -> str:
    """The text cut at a word boundary to at most ``limit`` characters, with an ellipsis if cut."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # A single very long word has no boundary to cut at; cut inside it rather than drop it.
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def make_summary(excerpt: str | None, content: str | None) -> str:
    """A plain-text summary of ~300 characters: the excerpt, or else the first paragraph."""
    text = plain_text(excerpt)
    # WordPress appends "[…]" or "Continue reading" links to excerpts; the digest has its own.
    text = re.sub(r"\s*(\[(…|\.\.\.|&hellip;)\]|Continue reading.*|Read more.*)$", "", text)
    if not text:
        text = first_paragraph(content)
    return truncate_words(text)
