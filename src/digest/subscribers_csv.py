"""Bulk import and export of subscribers as CSV: what operators move lists with.

Import reads a real-world file (header row, any column order, UTF-8 with or without BOM),
reports each bad row with its line number, merges duplicates within the file and against the
store, and writes every valid row in one transaction. Running the same import again changes
nothing. Export writes exactly what import reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from sqlmodel import Session

from digest.addresses import clean_name, normalize_email
from digest.clock import utcnow
from digest.db import in_batches
from digest.errors import DigestError, ImportFileError, InvalidInput
from digest.models import Subscriber
from digest.states import SubscriberStatus
from digest.subscriber_fields import (
    parse_cadence,
    parse_hour,
    parse_status,
    parse_timezone,
    parse_topics,
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
)
_TIME_COLUMNS = ("created_at", "confirmed_at", "unsubscribed_at", "consent_at")
_TEXT_COLUMNS = ("consent_ip", "consent_source", "consent_wording")
# Statuses an import may never move a stored subscriber out of: they left, or their mail bounced.
_STICKY = {
    SubscriberStatus.UNSUBSCRIBED.value,
    SubscriberStatus.BOUNCED.value,
    SubscriberStatus.COMPLAINED.value,
}
_CHUNK = 2000
_SCAN_ABOVE = 5000
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


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a CSV with a header; column names are matched loosely."""
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
    names = [h.strip().lower().replace(" ", "_").replace("-", "_") for h in header]
    if "e_mail" in names and "email" not in names:
        names[names.index("e_mail")] = "email"
    if "email" not in names:
        raise ImportFileError("no 'email' column in the header row")
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            cells = [_restore(v) for v in values]
            yield reader.line_num, dict(zip(names, cells, strict=False))
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: malformed CSV ({exc})") from None


def open_csv(path: Path) -> TextIO:
    """Open a CSV file as UTF-8, with or without a byte-order mark; a clear error otherwise."""
    if not path.exists():
        raise ImportFileError(f"no such file: {path}")
    if path.is_dir():
        raise ImportFileError(f"{path} is a folder, not a CSV file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path} is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise ImportFileError(f"{path} is not a text CSV file")
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
    return values


def import_rows(
    session: Session,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate, merge and write rows in the caller's transaction; returns what happened.

    New subscribers without a status column are imported active (the operator vouches for
    their consent, as when moving a list from another service). An import never re-activates
    someone who unsubscribed or bounced, and never adds a suppressed (erased) address.
    """
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
    existing = _existing(session, list(wanted))
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for email, values in wanted.items():
        current = existing.get(email)
        if current is None:
            inserts.append(_new_row(values, now, default_timezone, default_send_hour))
            continue
        change = _changes(current, values)
        if change:
            change.update(id=current["id"], updated_at=now)
            updates.append(change)
        else:
            report.unchanged += 1
    for chunk in in_batches(inserts, _CHUNK):
        session.execute(sa.insert(Subscriber), chunk)
    # Bulk UPDATE by primary key needs the same keys in every dict of one call.
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in updates:
        by_shape.setdefault(tuple(sorted(change)), []).append(change)
    for group in by_shape.values():
        for chunk in in_batches(group, _CHUNK):
            session.execute(sa.update(Subscriber), chunk)
    report.added, report.updated = len(inserts), len(updates)
    return report


def _drop_suppressed(
    session: Session, wanted: dict[str, dict[str, Any]], report: ImportReport
) -> None:
    for email in suppressed_among(session, wanted, batch=_CHUNK):
        del wanted[email]
        report.suppressed += 1


def _existing(session: Session, emails: list[str]) -> dict[str, dict[str, Any]]:
    table = Subscriber.__table__  # type: ignore[attr-defined]
    found: dict[str, dict[str, Any]] = {}
    if len(emails) > _SCAN_ABOVE:
        # One pass over the table beats many IN look-ups for a big file, and does not depend
        # on planner statistics: right after a large import PostgreSQL has not analysed the
        # table yet, and its IN look-ups turn into a sequential scan per chunk.
        wanted = set(emails)
        for row in session.execute(sa.select(table).execution_options(yield_per=_CHUNK)).mappings():
            if row["email"] in wanted:
                found[row["email"]] = dict(row)
        return found
    for chunk in in_batches(emails, _CHUNK):
        for row in session.execute(sa.select(table).where(table.c.email.in_(chunk))).mappings():
            found[row["email"]] = dict(row)
    return found


def _new_row(values: dict[str, Any], now: datetime, tz: str, hour: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": "",
        "cadence": "daily",
        "topics": [],
        "timezone": tz,
        "send_hour": hour,
        "status": SubscriberStatus.ACTIVE.value,
        "created_at": now,
        "updated_at": now,
        "confirmed_at": None,
        "unsubscribed_at": None,
        "consent_at": None,
        "consent_ip": None,
        "consent_user_agent": None,
        "consent_source": "import",
        "consent_wording": None,
        "last_digest_at": None,
        "active_since": None,
    }
    row.update(values)
    if row["status"] == SubscriberStatus.ACTIVE.value:
        # Active from this import on, whatever the file says: the scheduler starts from here.
        row["active_since"] = now
        if row["confirmed_at"] is None:
            row["confirmed_at"] = now
    if row["status"] == SubscriberStatus.UNSUBSCRIBED.value and row["unsubscribed_at"] is None:
        row["unsubscribed_at"] = now
    return row


def _changes(current: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``values`` that differ from the stored row, minus what import may not touch."""
    change: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("email", "created_at"):
            continue
        if key == "status" and (current["status"] in _STICKY or value == current["status"]):
            continue
        if current.get(key) != value:
            change[key] = value
    if change.get("status") == SubscriberStatus.ACTIVE.value:
        change["active_since"] = utcnow()
        if not current.get("confirmed_at"):
            change.setdefault("confirmed_at", change["active_since"])
    return change


def export_rows(session: Session, *, status: str | None = None) -> Iterator[list[str]]:
    """The header and one row per subscriber, in address order, as import reads them."""
    yield list(COLUMNS)
    table = Subscriber.__table__  # type: ignore[attr-defined]
    query = sa.select(*(table.c[c] for c in COLUMNS)).order_by(table.c.email)
    if status:
        query = query.where(table.c.status == parse_status(status, status))
    for row in session.execute(query.execution_options(yield_per=_CHUNK)):
        yield [_cell(c, v) for c, v in zip(COLUMNS, row, strict=True)]


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "topics":
        return _neutralise(",".join(value))
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
