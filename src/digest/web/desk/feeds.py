"""``/desk/feeds``: the feeds polled on schedule with their health, and an editor's add (with
discovery), poll now and remove: the library calls of ``digest feeds add|poll|remove``, each
audited.

Adding and polling fetch over the network under the SSRF guard; the route is a plain ``def``,
so the fetch runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from digest import audit
from digest.clock import utcnow
from digest.errors import FeedError, FeedNotFound
from digest.models import Feed
from digest.posts import feeds
from digest.posts.discover import add_feed_in
from digest.posts.poll import poll_feed_in
from digest.web.deps import SessionDep
from digest.web.desk.guard import Desk, EditorPost, Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)
Url = Annotated[str, Form(max_length=2048)]
Count = Annotated[int | None, Query(ge=0, le=10**9)]
DONE = {
    "added": "The feed is added; poll it now to fetch its posts.",
    "present": "That feed was already there.",
    "removed": "The feed is removed; its posts stay.",
    "not-modified": "The feed has not changed since its last poll.",
    "failed": "The poll failed; the feed's error is below.",
}


def _health(row: Feed | None) -> dict[str, Any]:
    if row is None:
        return {"last_polled_at": None, "last_ok_at": None, "last_error": None}
    return {
        "title": row.title,
        "last_polled_at": row.last_polled_at,
        "last_ok_at": row.last_ok_at,
        "last_error": row.last_error,
        "failing_since": row.failing_since,
    }


def _page(
    request: Request,
    desk: Desk,
    *,
    status: int = 200,
    notice: str = "",
    errors: dict[str, str] | None = None,
    typed_url: str = "",
    confirm: str | None = None,
) -> Response:
    configured = [u.strip() for u in desk.settings.feeds if u.strip()]
    rows = {f.url: f for f in feeds.list_feeds(desk.session)}
    items = [
        {"url": url, "row": rows.get(url), "from_settings": url in configured}
        for url in dict.fromkeys([*rows, *configured])
    ]
    return desk_page(
        request,
        "feeds",
        desk,
        status=status,
        title="Feeds",
        items=items,
        notice=notice,
        errors=errors or {},
        typed_url=typed_url,
        confirm=confirm,
    )


@router.get("/feeds")
def feeds_page(
    request: Request,
    desk: Viewer,
    done: Annotated[str | None, Query(max_length=20)] = None,
    new: Count = None,
    updated: Count = None,
    unchanged: Count = None,
    skipped: Count = None,
) -> Response:
    """Every feed with its last poll, last success, status and last error."""
    notice = DONE.get(done or "", "")
    if done == "polled" and new is not None:
        notice = f"Polled: {new} new, {updated or 0} updated, {unchanged or 0} unchanged"
        notice += f", {skipped} skipped (no title or link)." if skipped else "."
    return _page(request, desk, notice=notice)


@router.post("/feeds/add")
def add(request: Request, desk: EditorPost, session: SessionDep, url: Url = "") -> Response:
    """Add a feed: the URL is fetched once; a page leads to its feed; anything else is refused."""
    if not url.strip():
        return _page(request, desk, status=422, errors={"url": "Give the feed's or site's URL."})
    try:
        added = add_feed_in(session, desk.settings, url)
    except FeedError as exc:
        return _page(request, desk, status=422, errors={"url": str(exc)}, typed_url=url)
    if added.created:
        after = {"url": added.found.url, "via": added.found.via, "page": added.found.page}
        audit.record(session, desk.actor, "feed.add", added.found.url, after=after)
    return RedirectResponse(
        f"/desk/feeds?done={'added' if added.created else 'present'}", status_code=303
    )


def _known(desk: Desk, url: str) -> str:
    """``url`` if it is a stored or configured feed; FeedNotFound (404) otherwise."""
    url = url.strip()
    if not url.isprintable():  # no feed has one, and PostgreSQL refuses to compare a NUL
        raise FeedNotFound(f"There is no feed {url!r}.")
    configured = {u.strip() for u in desk.settings.feeds}
    if url in configured or feeds.get_feed(desk.session, url) is not None:
        return url
    raise FeedNotFound(f"There is no feed {url!r}.")


@router.post("/feeds/poll")
def poll(request: Request, desk: EditorPost, session: SessionDep, url: Url = "") -> Response:
    """Poll one feed now and say what it brought."""
    url = _known(desk, url)
    before = _health(feeds.get_feed(session, url))
    result = poll_feed_in(session, desk.settings, url, utcnow())
    after = {**_health(feeds.get_feed(session, url)), "inserted": result.inserted}
    audit.record(session, desk.actor, "feed.poll", url, before=before, after=after)
    if not result.ok:
        return RedirectResponse("/desk/feeds?done=failed", status_code=303)
    if result.not_modified:
        return RedirectResponse("/desk/feeds?done=not-modified", status_code=303)
    counts = f"new={result.inserted}&updated={result.updated}&unchanged={result.unchanged}"
    return RedirectResponse(
        f"/desk/feeds?done=polled&{counts}&skipped={result.skipped}", status_code=303
    )


@router.post("/feeds/remove")
def remove(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    url: Url = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Stop polling a feed once the editor confirmed it; its posts stay."""
    url = _known(desk, url)
    if url in {u.strip() for u in desk.settings.feeds}:
        message = "This feed comes from DIGEST_FEEDS; remove it there."
        return _page(request, desk, status=422, errors={"remove": message}, confirm=url)
    if confirm != "yes":
        message = "Tick the box to confirm you want to stop polling this feed."
        return _page(request, desk, status=422, errors={"remove": message}, confirm=url)
    before = _health(feeds.get_feed(session, url))
    feeds.remove_feed(session, url)
    audit.record(session, desk.actor, "feed.remove", url, before={"url": url, **before})
    return RedirectResponse("/desk/feeds?done=removed", status_code=303)
