"""The subscriber files other tools write, read as digest's own columns (pure: no I/O).

A header row names its tool: digest's own export, a Mailchimp audience export (its subscribed,
unsubscribed and cleaned files), a listmonk subscriber export, a Ghost member export or a
Substack subscriber export. Each of their columns becomes one of digest's columns or is ignored;
``--map "Their Column=field"`` names any other. Values are turned into what digest reads:
Mailchimp's ``2024-01-05 10:22:01`` (UTC), listmonk's ``2024-01-05 10:22:01.5 +0000 UTC`` and
ISO times become ISO 8601 with an offset; a Mailchimp unsubscribe or clean time, Ghost's
``subscribed_to_emails=false``, Substack's ``email_disabled=true`` and listmonk's
``blocklisted`` become digest statuses that are never mailed. Tags and labels are recognised but
not used: ``--map "TAGS=topics"`` makes them topics.

The consent rule: a row shows consent when it carries a consent or confirmation time
(``consent_at``/``confirmed_at``; Mailchimp's ``OPTIN_TIME``/``CONFIRM_TIME``). digest's own
export carries ``confirmed_at`` for every active reader, so it shows consent as it is. A row that
shows none, and that its file does not already keep from mail (pending, unsubscribed, bounced,
complained), gets the status the operator names with ``--status``; without it the whole file is
refused before anything is written, so nobody is ever made active on a file's silence.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.errors import ConsentNotShown, DigestError, ImportFileError, InvalidInput
from digest.periods import check_timezone
from digest.states import SubscriberStatus

IGNORE = "ignore"
_UNSUBSCRIBED = SubscriberStatus.UNSUBSCRIBED.value
_BOUNCED = SubscriberStatus.BOUNCED.value
# When two columns of one row speak of its status, the one that keeps the person from mail wins.
_SEVERITY = {s.value: i for i, s in enumerate(SubscriberStatus)}
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?(?:\s+[A-Za-z+-][A-Za-z0-9+-]{0,5})?"
)


def parse_bool(cell: str) -> bool | None:
    """``true``/``false`` (also yes/no, 1/0, any case); None for a blank or any other value."""
    text = cell.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def parse_tags(cell: str) -> list[str]:
    """Tags from Mailchimp's ``"Sports","Local"`` or Ghost's ``Sports,Local``: trimmed, in order."""
    if not cell.strip():
        return []
    try:
        fields = next(
            csv.reader([cell.replace("\r", " ").replace("\n", " ")], skipinitialspace=True)
        )
    except (csv.Error, StopIteration):
        fields = cell.replace('"', "").split(",")
    return [tag.strip() for tag in fields if tag.strip()]


def parse_time(cell: str) -> str:
    """A tool's time as ISO 8601 with an offset (no offset means UTC); blank stays blank.

    A value that is no time at all comes back as it is, so that the row is reported with it.
    """
    text = cell.strip()
    match = _TIME.fullmatch(text)
    if match is None:
        return text
    day, clock, fraction, offset = match.groups()
    fraction = (fraction or "")[:7]  # Go and PostgreSQL write up to nine digits; Python reads six
    offset = "+00:00" if offset in (None, "Z") else offset
    if len(offset) == 3:
        offset += ":00"
    elif ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}")
    except ValueError:
        return text
    return parsed.isoformat()


def _to_topics(cell: str) -> str:
    # One tag is one topic, even when it holds a character digest splits topics on.
    return ",".join(re.sub(r"[,;|]", " ", tag) for tag in parse_tags(cell))


def _zone_or_default(cell: str) -> str:
    # A zone another tool guessed and digest does not know means the default, not a bad row.
    try:
        check_timezone(cell.strip())
    except ValueError:
        return ""
    return cell.strip()


def _unsubscribed_unless_true(cell: str) -> str:
    return _UNSUBSCRIBED if parse_bool(cell) is False else ""


def _unsubscribed_if_true(cell: str) -> str:
    return _UNSUBSCRIBED if parse_bool(cell) else ""


def _listmonk_status(cell: str) -> str:
    text = cell.strip().lower()
    return {"enabled": "", "disabled": _UNSUBSCRIBED, "blocklisted": _UNSUBSCRIBED}.get(text, text)


def _same(cell: str) -> str:
    # As the file has it: digest's own columns read exactly as before, leading tab and all.
    return cell


@dataclass(frozen=True)
class Spec:
    """What a tool's column means: digest's column it fills, how, and a status its value implies."""

    field: str | None
    convert: Callable[[str], str] = _same
    implies: str = ""  # a status set whenever the cell is not blank (Mailchimp's UNSUB_TIME)


def _ignored(*names: str) -> dict[str, Spec]:
    return {name: Spec(None) for name in names}


_MAILCHIMP = {
    "email_address": Spec("email"),
    "first_name": Spec("first_name"),
    "last_name": Spec("last_name"),
    "timezone": Spec("timezone", _zone_or_default),
    "optin_time": Spec("consent_at", parse_time),
    "optin_ip": Spec("consent_ip"),
    "confirm_time": Spec("confirmed_at", parse_time),
    "unsub_time": Spec("unsubscribed_at", parse_time, implies=_UNSUBSCRIBED),
    "clean_time": Spec(None, parse_time, implies=_BOUNCED),
    "tags": Spec(None, _to_topics),
    **_ignored("member_rating", "confirm_ip", "latitude", "longitude", "gmtoff", "dstoff"),
    **_ignored("cc", "region", "last_changed", "leid", "euid", "notes"),
    **_ignored("unsub_campaign_title", "unsub_campaign_id", "unsub_reason", "unsub_reason_other"),
    **_ignored("clean_campaign_title", "clean_campaign_id"),
    # The audience fields a new Mailchimp audience starts with.
    **_ignored("address", "phone_number", "birthday", "company"),
}
_LISTMONK = {
    "uuid": Spec(None),
    "email": Spec("email"),
    "name": Spec("name"),
    "attributes": Spec(None),
    "status": Spec("status", _listmonk_status),
    "created_at": Spec("created_at", parse_time),
    "updated_at": Spec(None),
}
_GHOST = {
    "email": Spec("email"),
    "name": Spec("name"),
    "subscribed_to_emails": Spec("status", _unsubscribed_unless_true),
    "created_at": Spec("created_at", parse_time),
    "deleted_at": Spec(None, parse_time, implies=_UNSUBSCRIBED),
    "labels": Spec(None, _to_topics),
    **_ignored("id", "note", "complimentary_plan", "stripe_customer_id", "tiers", "products"),
}
_SUBSTACK = {
    "email": Spec("email"),
    "name": Spec("name"),
    "email_disabled": Spec("status", _unsubscribed_if_true),
    "created_at": Spec("created_at", parse_time),
    **_ignored("active_subscription", "expiry", "plan", "type", "stripe_connected_customer_id"),
}
#: The tools whose exports are recognised, by the name ``consent_source`` gives them.
DIALECTS: dict[str, dict[str, Spec]] = {
    "mailchimp": _MAILCHIMP,
    "listmonk": _LISTMONK,
    "ghost": _GHOST,
    "substack": _SUBSTACK,
}
_OWN = "digest"
_TOOLS = "Mailchimp, listmonk, Ghost and Substack"


@dataclass(frozen=True)
class Column:
    """One column of the file: its header as written and what it becomes."""

    header: str
    spec: Spec

    def describe(self) -> str:
        """``field``, ``field (status S when set)`` or ``ignored``, as ``--dry-run`` shows it."""
        target = self.spec.field or IGNORE + "d"
        if target in ("first_name", "last_name"):
            target = "name"
        return f"{target} (status {self.spec.implies} when set)" if self.spec.implies else target


@dataclass(frozen=True)
class Layout:
    """How a file's columns become digest's: the tool it came from and each column's meaning."""

    dialect: str
    columns: tuple[Column, ...]

    def row(self, cells: Sequence[str]) -> dict[str, str]:
        """One row of the file in digest's columns, as the CSV import reads them."""
        row: dict[str, str] = {}
        statuses: list[str] = []
        for column, cell in zip(self.columns, cells, strict=False):
            spec = column.spec
            value = spec.convert(cell)
            if spec.implies and value:
                statuses.append(spec.implies)
            if spec.field == "status":
                statuses.append(value)
            elif spec.field is not None and (value or spec.field not in row):
                row[spec.field] = value
        first, last = row.pop("first_name", "").strip(), row.pop("last_name", "").strip()
        if (first or last) and not row.get("name"):
            row["name"] = f"{first} {last}".strip()
        said = [s for s in statuses if s]
        if said:
            row["status"] = max(said, key=_severity)
        elif statuses:
            row["status"] = ""
        if self.dialect != _OWN and shows_consent(row) and not row.get("consent_source"):
            row["consent_source"] = f"import:{self.dialect}"
        return row


def _severity(status: str) -> int:
    # A value digest does not know ranks highest, so that the row is reported with it.
    return _SEVERITY.get(status.strip().lower(), len(_SEVERITY))


def header_key(name: str) -> str:
    """A header as columns are matched: trimmed, lower case, spaces and hyphens as ``_``."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def parse_maps(maps: Iterable[str], own: Sequence[str]) -> dict[str, str]:
    """``--map "Their Column=field"`` options as {their column: digest column or ``ignore``}."""
    parsed: dict[str, str] = {}
    for text in maps:
        header, sep, field = text.rpartition("=")
        field = field.strip().lower()
        if not sep or not header.strip():
            raise InvalidInput(f"--map takes 'Their Column=field', not {text!r}")
        if field not in own and field != IGNORE:
            raise InvalidInput(
                f"--map {text!r}: {field!r} is none of digest's columns ({', '.join(own)}) "
                f"nor {IGNORE}"
            )
        parsed[header.strip()] = field
    return parsed


def read_header(header: Sequence[str], maps: Mapping[str, str], own: Sequence[str]) -> Layout:
    """The layout of a file with this header row, or an error saying what digest can read."""
    keys = [header_key(h) for h in header]
    for named in maps:
        if header_key(named) not in keys:
            raise InvalidInput(
                f"--map names {named!r}, which is not a column of this file "
                f"(its columns: {', '.join(h.strip() for h in header)})"
            )
    maps = {header_key(named): field for named, field in maps.items()}
    own_specs = {name: Spec(name) for name in own} | {"e_mail": Spec("email")}
    candidates = {_OWN: own_specs, **DIALECTS}
    name, specs = max(
        candidates.items(),
        key=lambda item: (_has_email(item[1], keys, maps), _known(item[1], keys, maps)),
    )
    if not _has_email(specs, keys, maps):
        raise ImportFileError(f"no 'email' column in the header row: {_expected(own)}")
    columns = []
    unknown = []
    for raw, key in zip(header, keys, strict=True):
        spec = specs.get(key, Spec(None)) if key else Spec(None)
        if key in maps:
            field = None if maps[key] == IGNORE else maps[key]
            spec = Spec(field, spec.convert)  # their values, read as that tool writes them
        elif key and key not in specs:
            unknown.append(raw.strip())
        columns.append(Column(raw.strip(), spec))
    if unknown:
        raise ImportFileError(f"unknown column {', '.join(map(repr, unknown))}: {_expected(own)}")
    return Layout(name, tuple(columns))


def _has_email(specs: Mapping[str, Spec], keys: list[str], maps: Mapping[str, str]) -> bool:
    return any(
        maps.get(key) == "email"
        or (key not in maps and specs.get(key, Spec(None)).field == "email")
        for key in keys
    )


def _known(specs: Mapping[str, Spec], keys: list[str], maps: Mapping[str, str]) -> int:
    return sum(1 for key in keys if key in specs and key not in maps)


def _expected(own: Sequence[str]) -> str:
    return (
        f"digest reads its own columns ({', '.join(own)}), the exports of {_TOOLS}, "
        "and any other column named with --map 'Their Column=field' (or =ignore)"
    )


def shows_consent(row: Mapping[str, str]) -> bool:
    """Whether a row carries evidence of consent: a consent or a confirmation time."""
    return bool(row.get("consent_at", "").strip() or row.get("confirmed_at", "").strip())


def needs_status(row: Mapping[str, str]) -> bool:
    """Whether a row would be mailed on nobody's word: active or no status, and no consent shown."""
    said = row.get("status", "").strip().lower()
    return said in ("", SubscriberStatus.ACTIVE.value) and not shows_consent(row)


def lacking(rows: Iterable[tuple[int, dict[str, str]]]) -> int:
    """How many rows would need ``--status``."""
    return sum(1 for _, row in rows if needs_status(row))


def settle_status(
    rows: list[tuple[int, dict[str, str]]], status: str | None
) -> list[tuple[int, dict[str, str]]]:
    """The rows, those without consent given ``status``; refused whole when it is None."""
    lacking = [row for _, row in rows if needs_status(row)]
    if lacking and status is None:
        raise ConsentNotShown(
            f"{len(lacking)} of {len(rows)} rows show no consent (no consent or confirmation "
            "time): pass --status active if you hold their consent, or --status pending"
        )
    for row in lacking:
        row["status"] = str(status)
    return rows


def preview(
    rows: Iterable[tuple[int, dict[str, str]]],
    values_of: Callable[[dict[str, str]], dict[str, Any]],
    status: str | None,
) -> list[tuple[int, dict[str, Any] | str]]:
    """Each row as ``values_of`` reads it, with the status it would get, or why it is rejected."""
    shown: list[tuple[int, dict[str, Any] | str]] = []
    for line, row in rows:
        try:
            values = values_of(row)
        except DigestError as exc:
            shown.append((line, str(exc)))
            continue
        if needs_status(row):
            values["status"] = status or "(refused without --status)"
        shown.append((line, {"status": SubscriberStatus.ACTIVE.value} | values))
    return shown
