"""``/desk/editions``: each newsletter's editions with their deliveries by state, an edition's
web version and a preview as any reader would get it, a test copy to yourself, and the form
that raises a post as a breaking-news alert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from digest import archive, audit, edition_list, engagement, newsletters
from digest.alerts import raise_named
from digest.clock import utcnow
from digest.errors import DigestError, InvalidInput, NotFound, first_line
from digest.previews import Preview, prepare_test_copy, preview_in, send_test_mail
from digest.web.desk.guard import Desk, EditorPost, Viewer, desk_enabled
from digest.web.desk.mail_preview import TestSendRefusal, html_response, parts_of
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

EditionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Address = Annotated[str, Query(max_length=320)]
#: What a finished action says on the page it leads back to (fixed sentences: nothing typed
#: is echoed from a link).
NOTICES = {
    "test": "A test copy went to your address.",
    "alert": "The alert was raised; its mail is queued for the readers who opted in.",
}


def _notice(done: str | None) -> str | None:
    return NOTICES.get(done or "")


def _list_page(
    request: Request,
    desk: Desk,
    session: Session,
    *,
    newsletter: str,
    after: int | None,
    done: str | None = None,
    alert: dict[str, str] | None = None,
    alert_error: str | None = None,
    status: int = 200,
) -> Response:
    every = list(newsletters.listed(session, archived=True))
    chosen = newsletters.get(session, newsletter) if newsletter else None
    found = edition_list.page(
        session, newsletter_id=int(chosen.id or 0) if chosen else None, after=after
    )
    return desk_page(
        request,
        "editions",
        desk,
        status=status,
        title="Editions",
        newsletters=every,
        names={n.id: n.name for n in every},
        newsletter=chosen.slug if chosen else "",
        editions=found.editions,
        next_after=found.next_after,
        states=("queued", "sent", "deferred", "bounced", "failed"),
        notice=_notice(done),
        alert=alert or {"post": "", "newsletter": chosen.slug if chosen else ""},
        alert_error=alert_error,
    )


@router.get("/editions")
def editions(
    request: Request,
    desk: Viewer,
    newsletter: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Editions newest first, a page at a time, of one newsletter or all."""
    return _list_page(request, desk, desk.session, newsletter=newsletter, after=after, done=done)


def _preview(desk: Desk, line: edition_list.EditionLine, slug: str, address: str) -> Preview:
    return preview_in(
        desk.session,
        desk.settings,
        address=address.strip() or None,
        cadence=line.cadence,
        now=utcnow(),
        newsletter=slug,
    )


def edition_view(
    request: Request,
    desk: Desk,
    edition_id: int,
    *,
    address: str = "",
    done: str | None = None,
    test_error: str | None = None,
    status: int = 200,
) -> Response:
    """The edition's page: its counts, its report, web version, a preview and the test-copy
    form."""
    session = desk.session
    line = edition_list.one(session, edition_id)
    # Clicks as last folded (``digest serve`` folds them every few seconds): folding here
    # would write from a page view, beside this request's own transaction.
    report = engagement.mail_report(session, "edition", edition_id)
    owner = newsletters.by_id(session, line.newsletter_id)
    try:
        archive.web_version(session, edition_id)
        in_archive = True
    except NotFound:
        in_archive = False
    shown: Any = None
    preview_error = reason = None
    try:
        made = _preview(desk, line, owner.slug, address)
        shown = parts_of(made.message) if made.message else None
        reason = made.reason
    except DigestError as exc:
        preview_error = first_line(exc)
        if address.strip():  # what was typed is wrong: the form is re-shown with why
            status = max(status, 422)
    return desk_page(
        request,
        "edition",
        desk,
        status=status,
        title=f"Edition {line.key}",
        edition=line,
        report=report,
        newsletter=owner,
        in_archive=in_archive,
        address=address,
        shown=shown,
        reason=reason,
        preview_error=preview_error,
        test_error=test_error,
        notice=_notice(done),
    )


@router.get("/editions/{edition_id}")
def edition(
    request: Request,
    desk: Viewer,
    edition_id: EditionId,
    address: Address = "",
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One edition: deliveries by state, web version, preview as a reader, test copy."""
    return edition_view(request, desk, edition_id, address=address, done=done)


@router.get("/editions/{edition_id}/preview.html")
def edition_preview(desk: Viewer, edition_id: EditionId, address: Address = "") -> Response:
    """The preview's HTML alone, for the sandboxed frame on the edition's page."""
    line = edition_list.one(desk.session, edition_id)
    owner = newsletters.by_id(desk.session, line.newsletter_id)
    made = _preview(desk, line, owner.slug, address)
    if made.message is None:
        raise NotFound(f"no digest for {made.who} now: {made.reason}")
    return html_response(made.message)


@router.post("/editions/{edition_id}/test")
def edition_test(
    request: Request, desk: EditorPost, edition_id: EditionId, refused: TestSendRefusal
) -> Response:
    """A test copy of what a new reader of this edition's cadence would get now, to the
    signed-in person's own address only."""
    if refused:
        return edition_view(request, desk, edition_id, test_error=refused, status=429)
    session, now, to_email = desk.session, utcnow(), desk.user.email
    line = edition_list.one(session, edition_id)
    owner = newsletters.by_id(session, line.newsletter_id)
    try:
        copy = prepare_test_copy(
            session,
            desk.settings,
            cadence=line.cadence,
            to_email=to_email,
            now=now,
            newsletter=owner.slug,
        )
        reply = send_test_mail(desk.settings, copy.config, to_email, copy.content, copy.fill, now)
    except DigestError as exc:
        return edition_view(request, desk, edition_id, test_error=first_line(exc), status=422)
    audit.record(
        session,
        desk.actor,
        "edition.test",
        f"edition {edition_id}",
        after={"to": to_email, "reply": reply},
    )
    return RedirectResponse(f"/desk/editions/{edition_id}?done=test", status_code=303)


@router.post("/editions/alert")
def raise_alert(
    request: Request,
    desk: EditorPost,
    post: Annotated[str, Form(max_length=2000)] = "",
    newsletter: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Raise a post (its id, guid or link) as a breaking-news alert in a newsletter."""
    typed = {"post": post, "newsletter": newsletter}
    session = desk.session
    try:
        if not post.strip() or "\x00" in post + newsletter:
            raise InvalidInput("name a post by its id, guid or link")
        with session.begin_nested():  # a refusal leaves nothing of the attempt behind
            report = raise_named(
                session,
                desk.settings,
                post.strip(),
                newsletter=newsletter or None,
                source="editor",
                now=utcnow(),
            )
    except DigestError as exc:
        return _list_page(
            request,
            desk,
            session,
            newsletter="",
            after=None,
            alert=typed,
            alert_error=first_line(exc),
            status=422,
        )
    audit.record(
        session,
        desk.actor,
        "alert.raise",
        f"post {report.post_id} in {report.newsletter}",
        after=report.as_dict(),
    )
    return RedirectResponse("/desk/editions?done=alert", status_code=303)
