"""Bulk import and export of subscribers as CSV: what operators move lists with.

Import reads a real-world file (header row, any column order, UTF-8 with or without BOM),
reports each bad row with its line number, merges duplicates within the file and against the
store, and writes every valid row in one transaction. Running the same import again changes
nothing. Export writes exactly what import reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from sqlmodel import Session

from digest import webhook_events
from digest.addresses import clean_name, normalize_email
from digest.clock import utcnow
from digest.db import in_batches
from digest.errors import DigestError, ImportFileError, InvalidInput
from digest.import_formats import Layout, preview, read_header, settle_status
from digest.models import Subscriber, Subscription
from digest.newsletters import FIRST
from digest.states import SubscriberStatus
from digest.subscriber_fields import (
    parse_cadence,
    parse_flag,
    parse_hour,
    parse_status,
    parse_timezone,
    parse_topics,
)
from digest.subscribers_merge import (
    PERSON_FIELDS,
    SUBSCRIPTION_FIELDS,
    changes,
    existing_rows,
    new_person,
    new_subscription,
    only,
    update_rows,
)
from digest.suppressions import suppressed_among

#: The columns export writes, in order; import accepts any subset that includes ``email``.
COLUMNS = (
    "email",
    "name",
    "status",
    "cadence",
    "topics",
    "timezone",
    "send_hour",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_wording",
    "alerts",
)
_TIME_COLUMNS = ("created_at", "confirmed_at", "unsubscribed_at", "consent_at")
_TEXT_COLUMNS = ("consent_ip", "consent_source", "consent_wording")
_S = Subscriber.__table__  # type: ignore[attr-defined]
_U = Subscription.__table__  # type: ignore[attr-defined]
_CHUNK = 2000
MAX_FIELD = 10_000
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"),
# and names, topics and sources come from the public form.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class RowError:
    """One rejected row: its line number in the file and why."""

    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    """What an import did."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0  # rows folded into an earlier row of the same file
    suppressed: int = 0
    errors: list[RowError] = field(default_factory=list)


def read_layout(
    stream: TextIO, maps: Mapping[str, str] | None = None
) -> tuple[Layout, Iterator[tuple[int, dict[str, str]]]]:
    """The file's layout (which tool wrote it, what each column becomes) and its rows in
    digest's columns; ``maps`` is ``--map`` as ``import_formats.parse_maps`` reads it."""
    csv.field_size_limit(MAX_FIELD)
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(
            "the file is empty: expected a header row with an email column"
        ) from None
    except csv.Error as exc:
        raise ImportFileError(f"not a CSV file ({exc})") from None
    layout = read_header(header, maps or {}, COLUMNS)
    return layout, _cells(reader, layout)


def read_rows(
    stream: TextIO, maps: Mapping[str, str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a CSV with a header; column names are matched loosely."""
    return read_layout(stream, maps)[1]


def _cells(reader: Any, layout: Layout) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            cells = [_restore(v) for v in values]
            yield reader.line_num, layout.row(cells)
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: malformed CSV ({exc})") from None


def open_csv(path: Path) -> TextIO:
    """Open a CSV file as UTF-8, with or without a byte-order mark; a clear error otherwise."""
    if not path.exists():
        raise ImportFileError(f"no such file: {path}")
    if path.is_dir():
        raise ImportFileError(f"{path} is a folder, not a CSV file")
    return decode_csv(path.read_bytes(), str(path))


def decode_csv(raw: bytes, name: str) -> TextIO:
    """An uploaded or read file's bytes as CSV text (UTF-8, with or without a byte-order
    mark); a clear error naming ``name`` otherwise."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{name} is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise ImportFileError(f"{name} is not a text CSV file")
    return io.StringIO(text, newline="")


def _parse_time(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"time without a timezone: {value!r}")
    return parsed


def _row_values(row: dict[str, str], default_tz: str, default_hour: int) -> dict[str, Any]:
    """The subscriber fields a row sets; a column that is absent or blank sets nothing."""
    values: dict[str, Any] = {"email": normalize_email(row.get("email", ""))}
    if row.get("name", "").strip():
        values["name"] = clean_name(row["name"])
    if row.get("cadence", "").strip():
        values["cadence"] = parse_cadence(row["cadence"])
    if row.get("topics", "").strip():
        values["topics"] = parse_topics(row["topics"])
    if row.get("timezone", "").strip():
        values["timezone"] = parse_timezone(row["timezone"], default_tz)
    if row.get("send_hour", "").strip():
        values["send_hour"] = parse_hour(row["send_hour"], default_hour)
    if row.get("status", "").strip():
        values["status"] = parse_status(row["status"], SubscriberStatus.ACTIVE.value)
    for column in _TIME_COLUMNS:
        if row.get(column, "").strip():
            values[column] = _parse_time(row[column])
    for column in _TEXT_COLUMNS:
        if row.get(column, "").strip():
            values[column] = clean_name(row[column], limit=200)
    if row.get("alerts", "").strip():
        values["alerts"] = parse_flag(row["alerts"])
    return values


def import_rows(
    session: Session,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    newsletter_id: int = FIRST,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
    progress: Callable[[int], None] | None = None,
    status: str | None = None,
) -> ImportReport:
    """Validate, merge and write rows onto one newsletter in the caller's transaction; returns
    what happened.

    Rows that show no consent take ``status`` (the operator's word), and without it the whole
    file is refused before anything is written (``import_formats.settle_status``); the others
    are imported active unless the file says otherwise. An import never re-activates someone
    who unsubscribed or bounced, and never adds a suppressed (erased) address. A person
    already on another newsletter keeps their one row: name, zone and hour are shared.
    """
    rows = settle_status(list(rows), status)
    report = ImportReport()
    wanted: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        report.rows += 1
        try:
            values = _row_values(row, default_timezone, default_send_hour)
        except DigestError as exc:
            report.errors.append(RowError(line, row.get("email", "").strip()[:80], str(exc)))
            continue
        if values["email"] in wanted:
            report.merged += 1
            wanted[values["email"]].update(values)
        else:
            wanted[values["email"]] = values
        if progress is not None:
            progress(1)
    _drop_suppressed(session, wanted, report)
    people = existing_rows(session, _S, _S.c.email, list(wanted))
    now = utcnow()
    new_people = [
        new_person(values, now, default_timezone, default_send_hour)
        for email, values in wanted.items()
        if email not in people
    ]
    for chunk in in_batches(new_people, _CHUNK):
        session.execute(sa.insert(_S), chunk)
    if new_people:
        people.update(existing_rows(session, _S, _S.c.email, [p["email"] for p in new_people]))
    ids = {email: int(people[email]["id"]) for email in wanted}
    subs = {
        row["subscriber_id"]: row
        for row in existing_rows(
            session,
            _U,
            _U.c.subscriber_id,
            list(ids.values()),
            _U.c.newsletter_id == newsletter_id,
        ).values()
    }
    inserts: list[dict[str, Any]] = []
    person_updates: list[dict[str, Any]] = []
    sub_updates: list[dict[str, Any]] = []
    for email, values in wanted.items():
        pid = ids[email]
        current_sub = subs.get(pid)
        person_change = changes(people[email], only(values, PERSON_FIELDS))
        if person_change:
            person_change.update(id=pid, updated_at=now)
            person_updates.append(person_change)
        if current_sub is None:
            sub = only(values, SUBSCRIPTION_FIELDS)
            inserts.append(new_subscription(sub, pid, newsletter_id, now))
            continue
        change = changes(current_sub, only(values, SUBSCRIPTION_FIELDS))
        if change:
            change.update(id=current_sub["id"], updated_at=now)
            sub_updates.append(change)
        if change or person_change:
            report.updated += 1
        else:
            report.unchanged += 1
    for chunk in in_batches(inserts, _CHUNK):
        session.execute(sa.insert(_U), chunk)
    update_rows(session, Subscriber, person_updates)
    update_rows(session, Subscription, sub_updates)
    report.added = len(inserts)
    emails = {pid: email for email, pid in ids.items()}
    moves = [(emails[row["subscriber_id"]], row["status"]) for row in inserts]
    by_id = {int(row["id"]): pid for pid, row in subs.items()}
    moves += [(emails[by_id[c["id"]]], c["status"]) for c in sub_updates if "status" in c]
    webhook_events.subscriptions_changed(session, newsletter_id, moves, now)
    return report


def preview_rows(
    rows: list[tuple[int, dict[str, str]]], *, status: str | None, default_timezone: str, hour: int
) -> list[tuple[int, dict[str, Any] | str]]:
    """Each row as a new subscriber would be stored from it, or why it would be rejected."""
    return preview(rows, lambda row: _row_values(row, default_timezone, hour), status)


def _drop_suppressed(
    session: Session, wanted: dict[str, dict[str, Any]], report: ImportReport
) -> None:
    for email in suppressed_among(session, wanted, batch=_CHUNK):
        del wanted[email]
        report.suppressed += 1


def export_rows(
    session: Session, *, status: str | None = None, newsletter_id: int = FIRST
) -> Iterator[list[str]]:
    """The header and one row per reader of the newsletter, in address order, as import
    reads them."""
    yield list(COLUMNS)
    columns = [(_S if c in ("email", *PERSON_FIELDS) else _U).c[c] for c in COLUMNS]
    query = (
        sa.select(*columns)
        .select_from(_S.join(_U, _U.c.subscriber_id == _S.c.id))
        .where(_U.c.newsletter_id == newsletter_id)
        .order_by(_S.c.email)
    )
    if status:
        query = query.where(_U.c.status == parse_status(status, status))
    for row in session.execute(query.execution_options(yield_per=_CHUNK)):
        yield [_cell(c, v) for c, v in zip(COLUMNS, row, strict=True)]


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "topics":
        return _neutralise(",".join(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return _neutralise(str(value))


def _neutralise(cell: str) -> str:
    """``cell`` with a quote in front when a spreadsheet would run it as a formula.

    Cells already starting with quotes before such a character get one more, so that
    ``_restore`` can tell the two apart and every value comes back exactly.
    """
    return "'" + cell if cell.lstrip("'").startswith(_FORMULA_START) else cell


def _restore(cell: str) -> str:
    """The value ``_neutralise`` wrote ``cell`` for; any other cell as it is."""
    if cell.startswith("'") and cell.lstrip("'").startswith(_FORMULA_START):
        return cell[1:]
    return cell


def write_csv(rows: Iterable[list[str]], stream: TextIO) -> int:
    """Write rows as CSV; returns how many subscriber rows (not counting the header)."""
    writer = csv.writer(stream, lineterminator="\n")
    count = -1
    for row in rows:
        writer.writerow(row)
        count += 1
    return max(count, 0)
