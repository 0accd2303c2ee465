"""``/desk/announcements/{id}``: one announcement as its readers would get it (a preview as any
reader), and what an editor does with it: a test copy to themselves, schedule it (at a moment,
or at a local hour on a day), send it now (its deliveries queued for the worker), cancel it.

Each change is audited with its status before and after; a refusal (a time past, a date not
a date, an announcement cancelled meanwhile) re-shows the page with the reason beside the
form, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from digest import announcement_copies, announcements, audit, newsletters
from digest.announcement_rules import check_hour, parse_day, parse_moment
from digest.clock import utcnow
from digest.errors import DigestError, InvalidInput, ScheduleInPast, first_line
from digest.models_campaigns import Announcement
from digest.previews import send_test_mail
from digest.web.desk.announcements import when_of
from digest.web.desk.guard import Desk, EditorPost, Viewer, desk_enabled
from digest.web.desk.mail_preview import TestSendRefusal, html_response, parts_of
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

AnnouncementId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Address = Annotated[str, Query(max_length=320)]
Short = Annotated[str, Form(max_length=200)]
NOTICES = {
    "created": "The draft is saved.",
    "edited": "The draft is saved.",
    "test": "A test copy went to your address.",
    "scheduled": "The announcement is scheduled.",
    "sent": "The announcement's mail is queued; the delivery worker sends it.",
    "cancelled": "The announcement is cancelled; what was still queued will not be sent.",
}


def _state(row: Announcement) -> dict[str, Any]:
    """What the audit log keeps of an announcement before and after a change."""
    return {
        "status": row.status,
        "send_at": row.send_at,
        "local_hour": row.local_hour,
        "local_date": row.local_date,
        "recipients": row.recipients,
    }


def detail_view(
    request: Request,
    desk: Desk,
    announcement_id: int,
    *,
    address: str = "",
    done: str | None = None,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The announcement's page, with the errors of a form just sent beside their fields."""
    session = desk.session
    row = announcements.get(session, announcement_id)
    errors = dict(errors or {})
    shown = None
    try:
        raw = announcement_copies.preview_in(
            session, desk.settings, announcement_id, address=address.strip() or None, now=utcnow()
        )
        shown = parts_of(raw)
    except DigestError as exc:
        errors["address"] = first_line(exc)
        if address.strip():
            status = max(status, 422)
    return desk_page(
        request,
        "announcement",
        desk,
        status=status,
        title=f"Announcement #{announcement_id}",
        row=row,
        newsletter=newsletters.by_id(session, row.newsletter_id),
        when=when_of(row),
        deliveries=announcements.deliveries(session, row),
        address=address,
        shown=shown,
        errors=errors,
        typed={"when": "at", "at": "", "hour": "", "on": "", **(typed or {})},
        notice=NOTICES.get(done or ""),
    )


@router.get("/announcements/{announcement_id}")
def detail(
    request: Request,
    desk: Viewer,
    announcement_id: AnnouncementId,
    address: Address = "",
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One announcement: status, schedule, mail by state, a preview as a reader, actions."""
    return detail_view(request, desk, announcement_id, address=address, done=done)


@router.get("/announcements/{announcement_id}/preview.html")
def preview_html(desk: Viewer, announcement_id: AnnouncementId, address: Address = "") -> Response:
    """The preview's HTML alone, for the sandboxed frame on the announcement's page."""
    raw = announcement_copies.preview_in(
        desk.session, desk.settings, announcement_id, address=address.strip() or None, now=utcnow()
    )
    return html_response(raw)


def _done(announcement_id: int, what: str) -> Response:
    return RedirectResponse(f"/desk/announcements/{announcement_id}?done={what}", status_code=303)


def _refused(
    request: Request, desk: Desk, announcement_id: int, name: str, exc: DigestError, **kw: Any
) -> Response:
    status = 409 if exc.http_status == 409 else 422
    errors = {name: first_line(exc)}
    return detail_view(request, desk, announcement_id, errors=errors, status=status, **kw)


@router.post("/announcements/{announcement_id}/test")
def test_copy(
    request: Request, desk: EditorPost, announcement_id: AnnouncementId, refused: TestSendRefusal
) -> Response:
    """One copy, marked as a test, to the signed-in person's own address only."""
    if refused:
        return detail_view(request, desk, announcement_id, errors={"test": refused}, status=429)
    to_email, now = desk.user.email, utcnow()
    try:
        copy = announcement_copies.prepare_test(
            desk.session, desk.settings, announcement_id, to_email=to_email
        )
        reply = send_test_mail(desk.settings, copy.config, to_email, copy.content, copy.fill, now)
    except DigestError as exc:
        return _refused(request, desk, announcement_id, "test", exc)
    audit.record(
        desk.session,
        desk.actor,
        "announcement.test",
        f"announcement {announcement_id}",
        after={"to": to_email, "reply": reply},
    )
    return _done(announcement_id, "test")


def _schedule(desk: Desk, announcement_id: int, typed: dict[str, str]) -> None:
    """Schedule as the form says; InvalidInput or ScheduleInPast raised as ``(field, exc)``."""
    now = utcnow()
    if typed["when"] == "at":
        try:
            moment = parse_moment(typed["at"])
        except InvalidInput as exc:
            raise _FieldError("at", exc) from None
        try:
            announcements.schedule_at(desk.session, announcement_id, moment, now)
        except ScheduleInPast as exc:
            raise _FieldError("at", exc) from None
        return
    if typed["when"] != "local":
        raise _FieldError("when", InvalidInput("choose a moment, or a local hour on a day"))
    try:
        hour = check_hour(int(typed["hour"].strip()))
    except (ValueError, InvalidInput):
        raise _FieldError("hour", InvalidInput("a local hour is a whole number, 0 to 23")) from None
    try:
        day = parse_day(typed["on"])
    except InvalidInput as exc:
        raise _FieldError("on", exc) from None
    try:
        announcements.schedule_local(desk.session, announcement_id, hour, day, now)
    except ScheduleInPast as exc:
        raise _FieldError("on", exc) from None


class _FieldError(Exception):
    def __init__(self, name: str, exc: DigestError) -> None:
        super().__init__(name)
        self.name, self.exc = name, exc


@router.post("/announcements/{announcement_id}/schedule")
def schedule(
    request: Request,
    desk: EditorPost,
    announcement_id: AnnouncementId,
    when: Short = "at",
    at: Short = "",
    hour: Short = "",
    on: Short = "",
) -> Response:
    """Send at a moment (UTC), or at a local hour of each reader's day."""
    typed = {"when": when, "at": at, "hour": hour, "on": on}
    row = announcements.get(desk.session, announcement_id)
    before = _state(row)
    try:
        with desk.session.begin_nested():
            _schedule(desk, announcement_id, typed)
    except _FieldError as found:
        return _refused(request, desk, announcement_id, found.name, found.exc, typed=typed)
    except DigestError as exc:
        return _refused(request, desk, announcement_id, "schedule", exc, typed=typed)
    row = announcements.get(desk.session, announcement_id)
    audit.record(
        desk.session,
        desk.actor,
        "announcement.schedule",
        f"announcement {announcement_id}",
        before=before,
        after=_state(row),
    )
    return _done(announcement_id, "scheduled")


@router.post("/announcements/{announcement_id}/send")
def send_now(request: Request, desk: EditorPost, announcement_id: AnnouncementId) -> Response:
    """Queue it for every reader now; the delivery worker sends it."""
    before = _state(announcements.get(desk.session, announcement_id))
    try:
        with desk.session.begin_nested():
            done = announcements.send(desk.session, desk.settings, announcement_id, utcnow())
    except DigestError as exc:
        return _refused(request, desk, announcement_id, "send", exc)
    after = {**_state(announcements.get(desk.session, announcement_id)), "queued": done.added}
    audit.record(
        desk.session,
        desk.actor,
        "announcement.send",
        f"announcement {announcement_id}",
        before=before,
        after=after,
    )
    return _done(announcement_id, "sent")


@router.post("/announcements/{announcement_id}/cancel")
def cancel(request: Request, desk: EditorPost, announcement_id: AnnouncementId) -> Response:
    """Cancel it: what is still queued is not sent."""
    before = _state(announcements.get(desk.session, announcement_id))
    try:
        with desk.session.begin_nested():
            done = announcements.cancel(desk.session, announcement_id, utcnow())
    except DigestError as exc:
        return _refused(request, desk, announcement_id, "cancel", exc)
    after = {
        **_state(announcements.get(desk.session, announcement_id)),
        "cancelled": done.cancelled,
    }
    audit.record(
        desk.session,
        desk.actor,
        "announcement.cancel",
        f"announcement {announcement_id}",
        before=before,
        after=after,
    )
    return _done(announcement_id, "cancelled")
