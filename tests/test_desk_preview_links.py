"""A desk preview "as a subscriber" on both stores hands out none of that reader's signed links:
its HTML, text and frame carry inert ``#preview-…`` links, and no link in them unsubscribes
anyone or opens anyone's preferences on the public site, whoever the desk's viewer is."""

from __future__ import annotations

import asyncio
import html as html_lib
import re

import httpx
import pytest

from digest import subscriptions
from digest.config import Settings
from digest.db import Database
from tests.support.desk import desk_client
from tests.support.web import client, make_app
from tests.test_desk_editions import _edition, mailer, server  # noqa: F401

READER = "dan@example.com"
LINK = re.compile(r"(?:https?://[^\s\"'<>]+|/(?:unsubscribe|preferences)/[^\s\"'<>]+)")


async def _shown(http: httpx.AsyncClient, page_url: str) -> str:
    """The page previewing ``READER`` and its sandboxed frame's HTML, together."""
    page = await http.get(page_url, params={"address": READER})
    assert page.status_code == 200, page.text
    frame = re.search(r'<iframe class="preview" sandbox="" [^>]*src="([^"]+)"', page.text)
    assert frame, page.text
    inner = await http.get(html_lib.unescape(frame.group(1)))
    assert inner.status_code == 200
    return page.text.split("Text version")[1] + inner.text


def _inert(shown: str) -> None:
    """The preview's text part and frame show the marked sample links instead."""
    assert shown.count("#preview-unsubscribe") >= 2 and "#preview-preferences" in shown


async def _no_live_link(app: object, shown: str) -> None:
    """No link of the preview is a working unsubscribe or preferences link without a session."""
    public = client(app, "198.51.100.1")  # type: ignore[arg-type]
    paths = []
    for url in LINK.findall(html_lib.unescape(shown)):
        path = "/" + url.split("://", 1)[1].split("/", 1)[1] if "://" in url else url
        if path.startswith(("/unsubscribe/", "/preferences/")):
            paths.append(path)
    for path in paths:
        assert (await public.get(path)).status_code != 200, path
    assert not paths, paths  # none is even offered


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_an_edition_preview_carries_no_working_reader_link(
    db: Database,
    mailer: Settings,  # noqa: F811
    role: str,
) -> None:
    ident = await asyncio.to_thread(_edition, db, mailer)  # drain runs its own loop
    with db.transaction() as session:  # a reader who has not had that edition's story
        subscriptions.add(session, READER, confirmed=True)
    app = make_app(mailer, db)
    http, _ = await desk_client(app, db, role)
    shown = await _shown(http, f"/desk/editions/{ident}")
    await _no_live_link(app, shown)
    _inert(shown)


@pytest.mark.parametrize("role", ["viewer", "editor"])
async def test_an_announcement_preview_carries_no_working_reader_link(
    db: Database,
    mailer: Settings,  # noqa: F811
    role: str,
) -> None:
    with db.transaction() as session:
        subscriptions.add(session, READER, confirmed=True)
    app = make_app(mailer, db)
    editor, csrf = await desk_client(app, db, "editor")
    made = await editor.post(
        "/desk/announcements",
        data={"csrf_token": csrf, "newsletter": "digest", "subject": "Podcast", "body": "Hi."},
    )
    assert made.status_code == 303, made.text
    page_url = made.headers["location"].split("?")[0]
    http = editor if role == "editor" else (await desk_client(app, db, role))[0]
    shown = await _shown(http, page_url)
    await _no_live_link(app, shown)
    _inert(shown)
