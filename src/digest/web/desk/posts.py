"""``/desk/posts``: the latest posts with their featured and breaking state, the "Don't Miss"
strip of each newsletter, and a post's page where an editor features, unfeatures or raises it
as breaking news.

The changes are the library calls the CLI makes (``posts.store.set_featured`` as
``digest posts feature``, ``alerts.raise_in`` as ``digest posts alert``), each in the request's
transaction with its audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from digest import audit, newsletters
from digest.alerts import raise_named
from digest.audit_states import alert_fields, featured_state
from digest.clock import utcnow
from digest.errors import (
    AlertRefused,
    InvalidInput,
    NewsletterNotFound,
    NewsletterRequired,
    NotFound,
    PostNotFound,
)
from digest.models import Post
from digest.posts import overview, store
from digest.posts.featuring import parse_until
from digest.web.deps import SessionDep
from digest.web.desk.guard import Desk, EditorPost, Viewer, desk_enabled
from digest.web.desk.render import desk_page
from digest.web.desk.strip import moves

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)
PAGE = 50
PostId = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: What a redirect after a change says: fixed words, so a link cannot put text on the page.
DONE = {
    "featured": "The post is featured.",
    "unfeatured": "The post is no longer featured.",
    "alerted": "The alert is queued; a worker sends it.",
}


def _local_input(when: datetime | None, zone: str) -> str:
    """``when`` as a datetime-local value in the site's zone."""
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M") if when else ""


@router.get("/posts")
def posts_page(
    request: Request,
    desk: Viewer,
    session: SessionDep,
    before: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The latest posts, newest first, and the "Don't Miss" strips."""
    now = utcnow()
    strips = overview.dont_miss(session, desk.settings, now)
    lines, next_cursor = overview.latest(
        session, desk.settings, now, limit=PAGE, before=overview.parse_cursor(before)
    )
    return desk_page(
        request,
        "posts",
        desk,
        title="Posts",
        lines=lines,
        next_cursor=next_cursor,
        first_page=before is None,
        strips=strips,
        strip_moves={s.slug: moves([p.id or 0 for p in s.posts]) for s in strips},
        zone=desk.settings.timezone,
    )


def _post_page(
    request: Request,
    desk: Desk,
    post: Post,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    session, settings, now = desk.session, desk.settings, utcnow()
    rows = newsletters.listed(session)
    slugs = {int(n.id or 0): n.slug for n in newsletters.listed(session, archived=True)}
    pid = int(post.id or 0)
    alerted = overview.alerted_in(session, [pid])
    typed = typed or {}
    return desk_page(
        request,
        "post",
        desk,
        status=status,
        title=post.title or f"Post {pid}",
        post=post,
        state=overview.featured_state(post, settings.featured_categories, now, slugs),
        featured_by=overview.featured_by(session, [pid]).get(pid),
        alerted_in=[slugs.get(n, f"#{n}") for n in alerted.get(pid, [])],
        newsletters=rows,
        zone=settings.timezone,
        errors=errors or {},
        until=typed.get("until", _local_input(post.featured_until, settings.timezone)),
        feature_in=typed.get("feature_in", ""),
        alert_in=typed.get("alert_in", rows[0].slug if rows else ""),
        notice=notice,
    )


@router.get("/posts/{post_id}")
def post_page(
    request: Request,
    desk: Viewer,
    session: SessionDep,
    post_id: PostId,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One post: its facts, why it is featured or not, its alerts, and the editor's actions."""
    post = _get(session, post_id)
    return _post_page(request, desk, post, notice=DONE.get(done or "", ""))


def _get(session: Any, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise PostNotFound(f"There is no post {post_id}.")
    return post


def _newsletter_id(session: Any, slug: str) -> int | None:
    """The newsletter a form names by slug; empty: every one."""
    return int(newsletters.get(session, _slug(slug)).id or 0) if slug.strip() else None


def _slug(value: str) -> str:
    """A slug from a form; one no newsletter could have (a NUL, which PostgreSQL refuses to
    even compare) is not looked up."""
    if not value.isprintable():
        raise NewsletterNotFound(f"no newsletter {value!r}")
    return value.strip()


@router.post("/posts/{post_id}/feature")
def feature(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    post_id: PostId,
    until: Annotated[str, Form(max_length=100)] = "",
    feature_in: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Feature the post under Don't Miss, in every newsletter or one, until an end time."""
    post = _get(session, post_id)
    typed = {"until": until, "feature_in": feature_in}
    try:
        end = parse_until(until, desk.settings.timezone, utcnow())
        end = end.astimezone(UTC) if end else None
    except InvalidInput as exc:
        return _post_page(request, desk, post, status=422, errors={"until": str(exc)}, typed=typed)
    try:
        nid = _newsletter_id(session, feature_in)
    except NotFound as exc:
        errors = {"feature_in": str(exc)}
        return _post_page(request, desk, post, status=422, errors=errors, typed=typed)
    before = featured_state(post)
    try:
        store.set_featured(session, str(post_id), True, until=end, newsletter_id=nid)
    except InvalidInput as exc:
        return _post_page(request, desk, post, status=422, errors={"until": str(exc)}, typed=typed)
    after = featured_state(post)
    audit.record(session, desk.actor, "post.feature", f"post {post_id}", before=before, after=after)
    return RedirectResponse(f"/desk/posts/{post_id}?done=featured", status_code=303)


@router.post("/posts/{post_id}/unfeature")
def unfeature(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    post_id: PostId,
    feature_in: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Stop featuring the post (in every newsletter, or in one), whatever the source says."""
    post = _get(session, post_id)
    typed = {"feature_in": feature_in}
    before = featured_state(post)
    try:
        nid = _newsletter_id(session, feature_in)
        store.set_featured(session, str(post_id), False, newsletter_id=nid)
    except (NotFound, InvalidInput) as exc:
        errors = {"feature_in": str(exc)}
        return _post_page(request, desk, post, status=422, errors=errors, typed=typed)
    after = featured_state(post)
    audit.record(
        session, desk.actor, "post.unfeature", f"post {post_id}", before=before, after=after
    )
    return RedirectResponse(f"/desk/posts/{post_id}?done=unfeatured", status_code=303)


@router.post("/posts/{post_id}/alert")
def alert(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    post_id: PostId,
    alert_in: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Raise the post as breaking news in a newsletter: its opted-in readers' mail is queued."""
    post = _get(session, post_id)
    typed = {"alert_in": alert_in}
    before = {"alerted_in": overview.alerted_in(session, [post_id]).get(post_id, [])}
    try:
        # In this request's transaction so the audit entry goes with it, inside a savepoint so
        # that a refusal met after the first writes leaves nothing of the attempt behind.
        with session.begin_nested():
            report = raise_named(
                session,
                desk.settings,
                post_id,
                newsletter=_slug(alert_in) or None,
                source="editor",
                now=utcnow(),
            )
    except (NotFound, NewsletterRequired) as exc:
        errors = {"alert_in": str(exc)}
        return _post_page(request, desk, post, status=422, errors=errors, typed=typed)
    except AlertRefused as exc:
        errors = {"alert_in": str(exc)}
        return _post_page(request, desk, post, status=409, errors=errors, typed=typed)
    audit.record(
        session,
        desk.actor,
        "post.alert",
        f"post {post_id}",
        before=before,
        after=alert_fields(report),
    )
    return RedirectResponse(f"/desk/posts/{post_id}?done=alerted", status_code=303)
