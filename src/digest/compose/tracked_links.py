"""Changing the links of a mail in both its parts at once (pure): the hrefs of its HTML, and the
same URLs where its text part prints them.

Used for the tracked variant of a shared body (every outside link through ``/r/``) and for UTM
parameters on post links. The caller says, URL by URL, what a link becomes (``None``: it stays);
everything else in the two parts is kept byte for byte.

HTML hrefs are read as a browser reads an attribute: character references ending in ``;``
(``&amp;``) are decoded, so the function sees the real URL; the new URL is written back
escaped, in the attribute's own quotes. Only ``<a>`` and ``<area>`` hrefs are links a reader
clicks; images, stylesheets and text that merely looks like a tag are left alone.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable

#: What a caller decides for one URL: the URL it becomes, or None to leave it.
Change = Callable[[str], str | None]

# A start tag of a link, attributes quoted or not (a ">" inside quotes does not end it).
_LINK_TAG = re.compile(r"""<(?:a|area)(?=[\s/>])(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
# One attribute: its name, then its value in double quotes, single quotes or none.
_ATTRIBUTE = re.compile(
    r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""", re.ASCII
)
_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# In the text part a URL stands between white space, brackets or quotes, and may be followed
# by sentence punctuation; anything else after it would make it another URL.
_BEFORE = r"(?<![^\s<(\[{\"'])"
_AFTER = r"""(?=$|[\s>)\]}"']|[.,;:!?](?:$|[\s>)\]}"']))"""


def attribute_value(raw: str) -> str:
    """An attribute's text as a browser reads it: references ending in ``;`` decoded."""
    return _REFERENCE.sub(lambda m: html_lib.unescape(m.group(0)), raw) if "&" in raw else raw


def hrefs(html: str) -> list[str]:
    """The URL of every link in ``html``, in order (repeats kept)."""
    found = []
    for tag in _LINK_TAG.finditer(html):
        href = _href(tag.group(0))
        if href is not None:
            found.append(attribute_value(href[2]))
    return found


def _href(tag: str) -> tuple[int, int, str, str] | None:
    """The first href of a start tag: where its value is (start, end), the raw value and its
    quote (``""`` when unquoted); None when the tag has none."""
    name_end = re.match(r"<[A-Za-z]+", tag)
    pos = name_end.end() if name_end else 1
    for attr in _ATTRIBUTE.finditer(tag, pos, len(tag) - 1):
        if attr.group(1).lower() != "href":
            continue
        for group, quote in ((2, '"'), (3, "'"), (4, "")):
            if attr.group(group) is not None:
                return attr.start(group), attr.end(group), attr.group(group), quote
        return None  # "href" with no value: nothing to follow
    return None


def rewrite(html: str, text: str, change: Change) -> tuple[str, str]:
    """``html`` and ``text`` with each link ``change`` gives a new URL for rewritten.

    ``change`` is asked once per distinct URL among the HTML's hrefs; the text part has those
    same URLs replaced wherever it prints them whole.
    """
    decided: dict[str, str | None] = {}

    def tag_with_new_href(match: re.Match[str]) -> str:
        tag = match.group(0)
        href = _href(tag)
        if href is None:
            return tag
        start, end, raw, quote = href
        url = attribute_value(raw)
        if url not in decided:
            decided[url] = change(url)
        new = decided[url]
        if new is None or new == url:
            return tag
        escaped = html_lib.escape(new, quote=True)
        if not quote:
            # An unquoted value cannot hold every character a URL may: quote it now.
            return tag[:start] + '"' + escaped + '"' + tag[end:]
        return tag[:start] + escaped + tag[end:]

    new_html = _LINK_TAG.sub(tag_with_new_href, html)
    return new_html, replace_urls(text, {u: n for u, n in decided.items() if n and n != u})


def replace_urls(text: str, new: dict[str, str]) -> str:
    """``text`` with each URL of ``new`` replaced where it stands whole (the longest first, so
    a URL that extends another is never cut)."""
    wanted = [u for u in new if u and u in text]
    if not wanted:
        return text
    alternatives = "|".join(re.escape(u) for u in sorted(wanted, key=len, reverse=True))
    pattern = re.compile(_BEFORE + "(" + alternatives + ")" + _AFTER)
    return pattern.sub(lambda m: new[m.group(1)], text)


def add_before_body_end(html: str, fragment: str) -> str:
    """``html`` with ``fragment`` just before its ``</body>`` (at the end when it has none)."""
    at = html.lower().rfind("</body>")
    if at < 0:
        return html + fragment
    return html[:at] + fragment + html[at:]
