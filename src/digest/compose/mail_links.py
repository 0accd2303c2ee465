"""The links of a shared body as it is stored: UTM parameters on its post links, then its
tracked variant, every outside link through ``/r/`` (``tracking.py``).

Both are made once per body, where it is stored (an edition's bodies, an announcement's, an
alert's), never per message: the worker only picks a variant and fills ``%%TRACK%%``.

What is not tracked: the readers' own links (placeholders, filled per message, and any link
with one in it), ``mailto:`` and anything else that is not http(s), and digest's own pages
under ``DIGEST_BASE_URL`` (the web version, the preference centre): a click there tells
nothing about the stories.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import date

from digest.compose.select import Selection
from digest.compose.tracked_links import add_before_body_end, hrefs, rewrite
from digest.compose.utm import Campaign, digest_label
from digest.compose.views import inert_url
from digest.config import Settings
from digest.mail.content import MailContent
from digest.mail.message import TRACK
from digest.newsletter_config import NewsletterConfig
from digest.tracking import (
    OPEN_PATH,
    MailRef,
    TrackingMode,
    fits_a_token,
    link_token,
    tracked_url,
)


def post_links(links: Iterable[str]) -> frozenset[str]:
    """Posts' links as the templates print them (``views.inert_url``)."""
    return frozenset(inert_url(link) for link in links if link)


def with_campaign(
    content: MailContent, campaign: Campaign | None, posts: Collection[str]
) -> MailContent:
    """``content`` with the links to ``posts`` tagged with ``campaign`` (None: as it is)."""
    if campaign is None or not posts:
        return content
    html, text = rewrite(
        content.html, content.text, lambda url: campaign.tag(url) if url in posts else None
    )
    return replace(content, text=text, html=html)


def digest_links(
    content: MailContent,
    newsletter: NewsletterConfig,
    selection: Selection,
    *,
    cadence: str,
    local_date: date,
) -> MailContent:
    """A digest body's post links with the newsletter's UTM parameters (when it has them on),
    its campaign the cadence and the readers' local date."""
    if not newsletter.utm:
        return content
    chosen = (*selection.held, *selection.featured, *selection.latest)
    campaign = Campaign(newsletter.slug, digest_label(cadence, local_date))
    return with_campaign(content, campaign, post_links(p.link for p in chosen))


def is_outside(url: str, base_url: str) -> bool:
    """Whether a link leaves digest for the web: http(s), and not one of digest's own pages."""
    scheme = url.partition(":")[0].lower()
    if scheme not in ("http", "https"):
        return False
    base = base_url.rstrip("/")
    return not (url == base or url.startswith((base + "/", base + "?", base + "#")))


def with_tracking(content: MailContent, settings: Settings, mail: MailRef) -> MailContent:
    """``content`` with its tracked variant when ``DIGEST_TRACKING`` is not ``off``; with
    ``DIGEST_TRACK_OPENS`` the tracked HTML ends with a 1x1 image naming the mail."""
    if settings.tracking is TrackingMode.OFF:
        return content
    base, secret = settings.base_url, settings.secret

    def through_r(url: str) -> str | None:
        # A link holding a placeholder (an editor's "?e=%%EMAIL%%") is filled per reader: in
        # a token it would stay a placeholder, so it goes untracked.
        if "%%" in url or not is_outside(url, base):
            return None
        # A link too long for a token (an editor's, past what the redirect reads back) goes
        # untracked rather than to the redirect's "not found" page.
        if not fits_a_token(secret, mail, url):
            return None
        return tracked_url(base, secret, mail, url, TRACK)

    html, text = rewrite(content.html, content.text, through_r)
    if settings.track_opens:
        # url "" is what an open is in a link token; the image is the last thing a client
        # fetches, after the text the reader sees.
        token = link_token(secret, mail, "") + TRACK
        src = base + OPEN_PATH.format(token=token)
        html = add_before_body_end(html, f'<img src="{src}" width="1" height="1" alt="">')
    return replace(content, tracked_text=text, tracked_html=html)


def linked(content: MailContent) -> list[str]:
    """The links of a body's HTML, each once, in order."""
    return list(dict.fromkeys(hrefs(content.html)))
