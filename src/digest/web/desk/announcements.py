"""``/desk/announcements``: every announcement with its status, and writing one: compose a
draft (newsletter, subject, Markdown body, topics) and edit it while it is still a draft.

The same library as ``digest announce create``: a form is checked field by field first, so
each error stands beside its field; what only the library can tell (an archived newsletter,
an audience of nobody) is placed beside the field it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from digest import announcements, audit, newsletters
from digest.announcement_rules import Audience, audience, check_body, check_subject
from digest.errors import (
    DigestError,
    EmptyAudience,
    NewsletterArchived,
    NewsletterNotFound,
    NewsletterRequired,
    first_line,
)
from digest.models_campaigns import Announcement
from digest.web.desk.guard import Desk, Editor, EditorPost, Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

AnnouncementId = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: Library refusals by the field they concern.
_FIELD_OF: tuple[tuple[type[DigestError], str], ...] = (
    (NewsletterArchived, "newsletter"),
    (NewsletterNotFound, "newsletter"),
    (NewsletterRequired, "newsletter"),
    (EmptyAudience, "topics"),
)


@dataclass
class Typed:
    """What the compose form holds: what was typed, and the error of each field."""

    newsletter: str = ""
    subject: str = ""
    body: str = ""
    topics: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, desk: Desk, row: Announcement) -> Typed:
        """The form filled with a stored draft."""
        slug = newsletters.by_id(desk.session, row.newsletter_id).slug
        return cls(slug, row.subject, row.body_markdown, ", ".join(row.topics or ()))

    def draft(self) -> announcements.Draft | None:
        """The draft to hand to the library, or None with ``errors`` filled."""
        wanted: Audience | None = None
        try:
            check_subject(self.subject)
        except DigestError as exc:
            self.errors["subject"] = first_line(exc).replace(" (--subject)", "")
        try:
            check_body(self.body, None)
        except DigestError as exc:
            self.errors["body"] = first_line(exc)
        try:
            wanted = audience(0, topics=self.topics)
        except DigestError as exc:
            self.errors["topics"] = first_line(exc)
        for name in ("newsletter", "subject", "body", "topics"):
            if "\x00" in getattr(self, name):  # no store keeps it (PostgreSQL refuses it)
                self.errors[name] = "this field holds a NUL character; remove it"
        if self.errors or wanted is None:
            return None
        return announcements.Draft(self.subject, self.body, None, wanted)

    def refused(self, exc: DigestError) -> None:
        """Put a library refusal beside its field (or above the form)."""
        name = next((f for kind, f in _FIELD_OF if isinstance(exc, kind)), "form")
        self.errors[name] = first_line(exc)


def when_of(row: Announcement) -> str:
    """When a scheduled announcement goes, in words."""
    if row.send_at is not None:
        return f"at {row.send_at:%Y-%m-%d %H:%M} UTC"
    if row.local_hour is not None:
        return f"at {row.local_hour:02d}:00 on {row.local_date} in each reader's timezone"
    return "not scheduled"


@router.get("/announcements")
def listing(request: Request, desk: Viewer) -> Response:
    """Every announcement, newest first, with its status and its mail by state."""
    session = desk.session
    names = {n.id: n.name for n in newsletters.listed(session, archived=True)}
    rows = [
        {
            "row": row,
            "newsletter": names.get(row.newsletter_id, str(row.newsletter_id)),
            "when": when_of(row),
            "deliveries": announcements.deliveries(session, row),
        }
        for row in announcements.listed(session)
    ]
    return desk_page(request, "announcements", desk, title="Announcements", rows=rows)


def _form(
    request: Request, desk: Desk, typed: Typed, *, target: int | None, status: int = 200
) -> Response:
    live = newsletters.listed(desk.session)
    return desk_page(
        request,
        "announcement_form",
        desk,
        status=status,
        title="Edit the draft" if target else "New announcement",
        typed=typed,
        target=target,
        newsletters=live,
    )


@router.get("/announcements/new")
def compose(request: Request, desk: Editor) -> Response:
    """The compose form."""
    return _form(request, desk, Typed(), target=None)


Text = Annotated[str, Form(max_length=1_000_000)]
Short = Annotated[str, Form(max_length=2000)]


@router.post("/announcements")
def create(
    request: Request,
    desk: EditorPost,
    newsletter: Short = "",
    subject: Short = "",
    body: Text = "",
    topics: Short = "",
) -> Response:
    """Write a draft; the form again with each error beside its field (422)."""
    typed = Typed(newsletter, subject, body, topics)
    draft = typed.draft()
    if draft is not None:
        try:
            with desk.session.begin_nested():
                made = announcements.create(desk.session, newsletter or None, draft, desk.settings)
        except DigestError as exc:
            typed.refused(exc)
    if typed.errors:
        return _form(request, desk, typed, target=None, status=422)
    ident = int(made.id or 0)
    audit.record(
        desk.session,
        desk.actor,
        "announcement.create",
        f"announcement {ident}",
        after={"status": made.status, "subject": made.subject},
    )
    return RedirectResponse(f"/desk/announcements/{ident}?done=created", status_code=303)


@router.get("/announcements/{announcement_id}/edit")
def edit_form(request: Request, desk: Editor, announcement_id: AnnouncementId) -> Response:
    """The draft in the compose form."""
    row = announcements.get(desk.session, announcement_id)
    return _form(request, desk, Typed.of(desk, row), target=announcement_id)


@router.post("/announcements/{announcement_id}/edit")
def edit(
    request: Request,
    desk: EditorPost,
    announcement_id: AnnouncementId,
    newsletter: Short = "",
    subject: Short = "",
    body: Text = "",
    topics: Short = "",
) -> Response:
    """Rewrite a draft; refused once it is scheduled, queued or cancelled."""
    row = announcements.get(desk.session, announcement_id)
    before = {"status": row.status, "subject": row.subject}
    typed = Typed(newsletter, subject, body, topics)
    draft = typed.draft()
    if draft is not None:
        try:
            with desk.session.begin_nested():
                announcements.revise(
                    desk.session, announcement_id, newsletter or None, draft, desk.settings
                )
        except DigestError as exc:
            typed.refused(exc)
    if typed.errors:
        return _form(request, desk, typed, target=announcement_id, status=422)
    audit.record(
        desk.session,
        desk.actor,
        "announcement.edit",
        f"announcement {announcement_id}",
        before=before,
        after={"status": row.status, "subject": row.subject},
    )
    return RedirectResponse(f"/desk/announcements/{announcement_id}?done=edited", status_code=303)
