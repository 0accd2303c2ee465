"""Posts as the mail templates see them: plain one-line text, wrapped text, inert links.

Feed text is untrusted twice over here: it must not look like one of the ``%%EMAIL%%``-style
placeholders that ``mail.message.assemble`` fills per subscriber, and the text part is wrapped
once per post, not once per body.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass
from datetime import date, timedelta

from digest.compose.select import Candidate

TEXT_WIDTH = 78
SUMMARY_CHARS = 320
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
_TAG = re.compile(r"<[^>]*>")
# Bodies carry "%%EMAIL%%"-style placeholders; text from a feed must never add one.
_PLACEHOLDER_LIKE = re.compile(r"%%(?=[A-Z_]+%%)")
_VIEW_CACHE = 5000


def date_line(day: date) -> str:
    """The date as the site's header writes it: "Sunday, November 29, 2026" (any locale)."""
    return f"{_DAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}, {day.year}"


def week_line(day: date) -> str:
    """The seven days a weekly digest sent on ``day`` covers: "This week: November 23 to 29,
    2026", with the month or year written twice when the week spans two."""
    first = day - timedelta(days=6)
    start = f"{_MONTHS[first.month - 1]} {first.day}"
    if first.year != day.year:
        start += f", {first.year}"
    end = f"{day.day}" if first.month == day.month else f"{_MONTHS[day.month - 1]} {day.day}"
    return f"This week: {start} to {end}, {day.year}"


def edition_line(cadence: str, day: date) -> str:
    """What an edition says under the site's name: its day, or for a weekly one its week."""
    return week_line(day) if cadence == "weekly" else date_line(day)


def plain_summary(raw: str, limit: int = SUMMARY_CHARS) -> str:
    """A summary as one paragraph of plain text: tags dropped, entities decoded, cut at a word."""
    text = " ".join(html.unescape(_TAG.sub(" ", raw or "")).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return cut + "…"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, line breaks included, as one space."""
    return " ".join(text.split())


@dataclass(frozen=True)
class PostView:
    """A post as the templates see it; the text form is wrapped once, not per render."""

    id: int
    title: str
    link: str
    summary: str
    author: str
    image_url: str | None
    image_alt: str
    text_title: str  # wrapped at 78 columns
    text_summary: str  # wrapped at 78 columns, indented


class PostViews:
    """Each post's view, made once and kept while its words stay the same."""

    def __init__(self) -> None:
        self.cached: dict[tuple[object, ...], PostView] = {}

    def view(self, post: Candidate) -> PostView:
        """The view of ``post``, made from every field it shows (an edited link is a new view)."""
        cache_key = (post.id, post.title, post.link, post.summary, post.author, post.image_url,
                     post.image_alt)  # fmt: skip
        view = self.cached.get(cache_key)
        if view is None:
            view = _make_view(post)
            if len(self.cached) >= _VIEW_CACHE:
                # A long-lived renderer (the web app's) must not grow without end.
                self.cached.clear()
            self.cached[cache_key] = view
        return view


def _make_view(post: Candidate) -> PostView:
    title = _inert(one_line(post.title)) or post.link
    summary = _inert(plain_summary(post.summary))
    return PostView(
        id=post.id,
        title=title,
        link=inert_url(post.link),
        summary=summary,
        author=_inert(one_line(post.author)),
        image_url=inert_url(post.image_url) or None,
        image_alt=_inert(one_line(post.image_alt)) or title,
        text_title=_wrap(title),
        text_summary=_wrap(summary, "  ") if summary else "",
    )


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(
        text,
        width=TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def inert_url(url: str | None) -> str:
    """A feed's URL with ``%%`` percent-encoded: the same URL to a browser, but never a
    placeholder that would put each subscriber's address or unsubscribe link into it."""
    return (url or "").replace("%%", "%25%25")


def _inert(text: str) -> str:
    """``text`` with anything shaped like a placeholder broken by a zero-width space."""
    return _PLACEHOLDER_LIKE.sub("%\u200b%", text) if "%%" in text else text
