"""``/desk/subscribers/import`` and ``/desk/subscribers/export.csv``: moving lists in and out
as ``digest subscribers import`` and ``export`` do.

Import is two steps, as ``import --dry-run --map`` then ``import``: the uploaded file's column
mapping and first rows as they would be stored, then, with the mappings and the status chosen,
the import in one transaction. Between the steps the file is kept on the server
(``import_uploads``: for the uploading desk session only, an hour at most, deleted by the
import); the form carries its random id, since a text field could not carry a real list.
No welcome mail unless asked, as the CLI.

Export is for editors, not viewers: a viewer reads people one at a time on the desk, but the
whole list in a file (addresses, consent IPs) leaving the system is a bulk disclosure of
personal data, so it needs the role that may change the list, and it is audited. It is a
form posted with the desk's CSRF token, never a plain link another site could make a signed-in
editor's browser follow.
"""

from __future__ import annotations

import csv as csv_module
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlmodel import Session

from digest import audit, import_formats, newsletters, subscribers_csv
from digest.clock import utcnow
from digest.db import Database
from digest.errors import ConsentNotShown, DigestError, ImportFileError, NewsletterNotFound
from digest.models import Newsletter
from digest.newsletters import FIRST
from digest.subscriber_record import parse_id
from digest.web.deps import SessionDep
from digest.web.desk import import_uploads
from digest.web.desk.guard import Desk, Editor, EditorPost, desk_enabled
from digest.web.desk.render import desk_page
from digest.web.desk.subscribers import STATUSES

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

#: The largest file an import takes (the Guard middleware lets this route's body be as large).
MAX_UPLOAD = 20 * 1024 * 1024
PREVIEW = 10
COUNTS = ("rows", "added", "updated", "unchanged", "merged", "suppressed", "rejected")


def _page(
    request: Request,
    desk: Desk,
    session: Session,
    *,
    typed: dict[str, Any],
    errors: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
    done: dict[str, int] | None = None,
) -> Response:
    return desk_page(
        request,
        "subscribers_import",
        desk,
        status=422 if errors else 200,
        title="Import subscribers",
        typed=typed,
        errors=errors or {},
        preview=preview,
        done=done,
        newsletters=newsletters.listed(session),
        statuses=STATUSES,
        fields=[*subscribers_csv.COLUMNS, import_formats.IGNORE],
    )


def _newsletter(session: Session, value: str) -> Newsletter | None:
    """The newsletter a form names by id (newsletter 1 when it names none), or None."""
    found = parse_id(value) if value.strip() else FIRST
    return None if found is None else session.get(Newsletter, found)


@router.get("/subscribers/import")
def import_form(request: Request, desk: Editor, session: SessionDep) -> Response:
    """The upload form, or what the last import did."""
    counts = {k: request.query_params.get(k, "") for k in COUNTS}
    done = {k: int(v[:12]) for k, v in counts.items() if v.isascii() and v.isdigit()} or None
    typed = {"newsletter": "", "status": "", "welcome": False, "csv": ""}
    return _page(request, desk, session, typed=typed, done=done)


def _file_text(desk: Desk, upload: UploadFile | None, carried: str) -> tuple[bytes, str, str]:
    """The file's bytes, name and kept id: the upload when there is one (kept for the next
    step), else the file the preview kept."""
    owner = int(desk.row.id or 0)
    if upload is not None and upload.filename:
        raw = upload.file.read(MAX_UPLOAD + 1)
        if len(raw) > MAX_UPLOAD:
            raise ImportFileError(f"The file is over {MAX_UPLOAD // (1024 * 1024)} MB; split it.")
        return raw, upload.filename[:200], import_uploads.keep(desk.settings, owner, raw)
    if carried:
        kept = import_uploads.load(desk.settings, owner, carried)
        if kept is None:
            raise ImportFileError("The file previewed is no longer kept; choose it again.")
        return kept, "the file", carried
    raise ImportFileError("Choose a CSV file to import.")


def _maps(headers: list[str], choices: list[str]) -> list[str]:
    """The ``--map`` options the preview's column choices make (blank: as detected)."""
    return [
        f"{header}={field.strip()}"
        for header, field in zip(headers[:200], choices, strict=False)
        if field.strip() and header.strip()
    ]


@router.post("/subscribers/import")
def import_file(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    step: Annotated[str, Form()] = "preview",
    newsletter: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    welcome: Annotated[str, Form()] = "",
    csv: Annotated[str, Form(max_length=64)] = "",  # the kept file's id
    header: Annotated[list[str] | None, Form()] = None,
    field: Annotated[list[str] | None, Form()] = None,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Preview the file's mapping and first rows, or (``step=import``) import it."""
    typed: dict[str, Any] = {
        "newsletter": newsletter.strip(),
        "status": status.strip().lower(),
        "welcome": bool(welcome),
        "csv": "",  # set once the file reads: the kept file's id, carried on
    }
    raw = b""
    errors: dict[str, str] = {}
    if typed["status"] and typed["status"] not in STATUSES:
        errors["status"] = f"Status is one of {', '.join(STATUSES)}."
    chosen = _newsletter(session, typed["newsletter"])
    if chosen is None or chosen.archived_at is not None:
        errors["newsletter"] = "Choose one of the newsletters listed."
    if errors or chosen is None:
        return _page(request, desk, session, typed=typed, errors=errors)
    try:
        raw, name, typed["csv"] = _file_text(desk, file, csv)
        maps = _maps(header or [], field or [])
        parsed = import_formats.parse_maps(maps, subscribers_csv.COLUMNS)
        layout, read = subscribers_csv.read_layout(subscribers_csv.decode_csv(raw, name), parsed)
        rows = list(read)
        if not rows:
            raise ImportFileError(f"{name} has a header but no rows.")
        typed["maps"] = {m.rpartition("=")[0]: m.rpartition("=")[2] for m in maps}
        if step != "import":
            preview = _preview(desk, layout, rows, typed["status"] or None)
            return _page(request, desk, session, typed=typed, preview=preview)
        done = _import(request, desk, session, int(chosen.id or 0), rows, typed, chosen.slug)
        import_uploads.drop(desk.settings, int(desk.row.id or 0), typed["csv"])
        return done
    except ConsentNotShown as exc:
        errors["status"] = str(exc).replace("--status", "a status")
    except DigestError as exc:
        errors["file"] = str(exc)
    # The columns still, so that one digest does not know can be named (as --map does).
    header = _header(raw) if raw else []
    unread = {"format": "", "columns": [(h, "?") for h in header], "total": None, "rows": []}
    return _page(request, desk, session, typed=typed, errors=errors, preview=unread)


def _header(raw: bytes) -> list[str]:
    """The file's header row, or nothing when it has none that reads."""
    try:
        return [h.strip() for h in next(csv_module.reader(subscribers_csv.decode_csv(raw, "")))]
    except (DigestError, StopIteration, csv_module.Error):
        return []


def _preview(
    desk: Desk, layout: import_formats.Layout, rows: list[Any], status: str | None
) -> dict[str, Any]:
    settings = desk.settings
    shown = subscribers_csv.preview_rows(
        rows[:PREVIEW], status=status, default_timezone=settings.timezone, hour=settings.send_hour
    )
    return {
        "format": layout.dialect,
        "columns": [(c.header, c.describe()) for c in layout.columns],
        "total": len(rows),
        "lacking": import_formats.lacking(rows),
        "rows": [
            (line, v if isinstance(v, str) else {k: _plain(x) for k, x in v.items()})
            for line, v in shown
        ],
    }


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value)
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _import(
    request: Request,
    desk: Desk,
    session: Session,
    newsletter_id: int,
    rows: list[Any],
    typed: dict[str, Any],
    slug: str,
) -> Response:
    settings = desk.settings
    started = utcnow()
    report = subscribers_csv.import_rows(
        session,
        rows,
        newsletter_id=newsletter_id,
        default_timezone=settings.timezone,
        default_send_hour=settings.send_hour,
        status=typed["status"] or None,
    )
    welcomed = 0
    if typed["welcome"]:
        # As ``import --welcome``: the templates' stack only when someone asked for it.
        from digest import welcome
        from digest.compose.render import Renderers

        welcomed = welcome.queue_welcomes_since(
            session, settings, newsletter_id, started, renderers=Renderers(settings)
        )
    counts = {k: v for k, v in report.__dict__.items() if isinstance(v, int)}
    counts["rejected"] = len(report.errors)
    audit.record(
        session,
        desk.actor,
        "subscriber.import",
        slug,
        after=counts | {"status": typed["status"] or None, "welcome_mails": welcomed},
    )
    query = "&".join(f"{k}={counts[k]}" for k in COUNTS)
    return RedirectResponse(f"/desk/subscribers/import?{query}", status_code=303)


def _csv_lines(db: Database, newsletter_id: int, status: str | None) -> Iterator[str]:
    """The export, a line at a time, read in a transaction of its own (the response outlives
    the route's)."""
    with db.transaction() as session:
        buffer = io.StringIO()
        writer = csv_module.writer(buffer, lineterminator="\n")
        for row in subscribers_csv.export_rows(session, status=status, newsletter_id=newsletter_id):
            writer.writerow(row)
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()


@router.post("/subscribers/export.csv")
def export(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    newsletter: Annotated[str, Form(max_length=64)] = "",
    status: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The newsletter's readers as ``digest subscribers export`` writes them, as a download.

    A POST with the form's CSRF token, not a link: the export is audited and discloses the
    whole list, so no other site may start one in an editor's browser."""
    status = status.strip().lower()
    chosen = _newsletter(session, newsletter)
    if chosen is None:
        raise NewsletterNotFound("There is no such newsletter to export.")
    if status and status not in STATUSES:
        status = ""
    audit.record(
        session,
        desk.actor,
        "subscriber.export",
        chosen.slug,
        after={"status": status or None},
    )
    stamp = utcnow().strftime("%Y%m%d")
    return StreamingResponse(
        _csv_lines(request.app.state.db, int(chosen.id or 0), status or None),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{chosen.slug}-subscribers-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
