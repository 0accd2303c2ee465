"""The links of a shared body as it is stored: UTM parameters on its post links, then its
tracked variant, every outside link through ``/r/`` (``tracking.py``).

Both are made once per body, where it is stored (an edition's bodies, an announcement's, an
alert's), never per message: the worker only picks a variant and fills ``%%TRACK%%``.

What is not tracked: the readers' own links (placeholders, filled per message), ``mailto:``
and anything else that is not http(s), and digest's own pages under ``DIGEST_BASE_URL`` (the
web version, the preference centre): a click there tells nothing about the stories.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from digest.compose.tracked_links import add_before_body_end, hrefs, rewrite
from digest.compose.utm import Campaign
from digest.compose.views import inert_url
from digest.config import Settings
from digest.mail.content import MailContent
from digest.mail.message import TRACK
from digest.tracking import OPEN_PATH, MailRef, TrackingMode, link_token, tracked_url


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
        return tracked_url(base, secret, mail, url, TRACK) if is_outside(url, base) else None

    html, text = rewrite(content.html, content.text, through_r)
    if settings.track_opens:
        # url "" is what an open is in a link token; the image is the last thing a client
        # fetches, after the text the reader sees.
        token = link_token(secret, mail, "") + TRACK
        src = base + OPEN_PATH.format(token=token)
        html = add_before_body_end(html, f'<img src="{src}" width="1" height="1" alt="">')
    return replace(content, tracked_text=text, tracked_html=html)


def finished(
    content: MailContent,
    settings: Settings,
    *,
    mail: MailRef,
    campaign: Campaign | None,
    posts: Collection[str],
) -> MailContent:
    """The body as it is stored: post links tagged (``campaign``), then its tracked variant."""
    return with_tracking(with_campaign(content, campaign, posts), settings, mail)


def linked(content: MailContent) -> list[str]:
    """The links of a body's HTML, each once, in order."""
    return list(dict.fromkeys(hrefs(content.html)))
