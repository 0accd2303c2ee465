"""``GET /r/{token}``: a tracked link's redirect; ``GET /o/{token}.gif``: the open pixel.

The token is signed (``tracking.read_token``), so the redirect goes only to a URL that was in
the mail it names: a tampered, truncated or made-up token gets the 404 page, never a
redirect, and only http(s) URLs are ever redirected to. The answer never waits on the store:
the click is handed to the process's ``ClickRecorder`` and counted a few seconds later.
Nothing about the request (address, agent) is kept; the agent and the method only decide
whether the click was a machine's.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from digest import click_rules
from digest.errors import InvalidToken, LinkNotFound
from digest.tracking import TrackedLink, TrackingMode, read_token, url_key
from digest.web.click_recorder import ClickRecorder

router = APIRouter(tags=["clicks"], include_in_schema=False)

GONE = "this link is not one of ours, or it was cut short; the page it led to may still be there"
#: 1x1 transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
# Everything printable in ASCII stays as it is; the rest is percent-encoded (as a browser
# would), so the Location header can carry no line break and no byte it cannot encode.
_KEEP = "".join(chr(c) for c in range(0x21, 0x7F))


def location(url: str) -> str | None:
    """Where a tracked URL may redirect: itself when it is an absolute http(s) URL, else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=_KEEP)


@router.api_route("/r/{token}", methods=["GET", "HEAD"])
async def follow(token: str, request: Request) -> Response:
    """302 to the link's URL, the click handed to the recorder; the 404 page for a bad token."""
    try:
        link = read_token(request.app.state.settings.secret, token)
    except InvalidToken:
        raise LinkNotFound(GONE) from None
    target = location(link.url) if link.url else None
    if target is None:  # an open's token, or a URL that is not a web page
        raise LinkNotFound(GONE)
    machine = click_rules.machine_request(request.method, request.headers.get("user-agent"))
    _record(request, link, kind="click", machine=machine, proxy=False)
    return Response(status_code=302, headers={"Location": target, **_NO_STORE})


@router.api_route("/r", methods=["GET", "HEAD"])
@router.api_route("/r/{rest:path}", methods=["GET", "HEAD"])
async def not_a_link() -> Response:
    """Anything else under /r/ (a slash in it, nothing after it, ``/r`` itself): the same
    404 page, rather than the router's redirect to the path with or without a slash."""
    raise LinkNotFound(GONE)


@router.api_route("/o/{token}.gif", methods=["GET", "HEAD"])
async def pixel(token: str, request: Request) -> Response:
    """The 1x1 transparent GIF, whatever the token; an open is recorded for a valid one."""
    settings = request.app.state.settings
    if settings.track_opens:
        try:
            link = read_token(settings.secret, token)
        except InvalidToken:
            link = None
        if link is not None and not link.url:
            agent = request.headers.get("user-agent")
            machine = click_rules.machine_request(request.method, agent)
            proxy = click_rules.image_proxy(agent)
            _record(request, link, kind="open", machine=machine, proxy=proxy)
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


def _record(request: Request, link: TrackedLink, *, kind: str, machine: bool, proxy: bool) -> None:
    """Hand the event to the recorder, keeping only what the tracking mode allows."""
    mode = request.app.state.settings.tracking
    if mode == TrackingMode.OFF or not link.counted:
        return
    recorder: ClickRecorder = request.app.state.clicks
    per_reader = mode == TrackingMode.PER_READER
    if link.reader is not None and not per_reader:
        # A per-reader copy clicked after tracking became aggregate: its tag is the reader's
        # id, which aggregate tracking must not keep, so it is counted without a copy.
        copy, reader = None, None
    else:
        copy, reader = link.copy, link.reader if per_reader else None
    event: dict[str, Any] = {
        "mail": str(link.mail),
        "url_key": url_key(link.url) if link.url else "",
        "url": link.url[:2048],
        "copy_tag": copy,
        "subscriber_id": reader,
        "at": recorder.now(),
        "kind": kind,
        "machine": machine,
        "proxy": proxy,
    }
    recorder.record(event)
