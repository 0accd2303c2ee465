"""How imported rows merge into the store: a person's row (shared by their newsletters) and
their subscription to the newsletter imported into, found in bulk and written in bulk.

``subscribers_csv.py`` reads and checks the file; this module decides what each row adds or
changes. Statuses a person chose or earned (unsubscribed, bounced, complained) never change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest.clock import utcnow
from digest.db import in_batches
from digest.states import SubscriberStatus

CHUNK = 2000
_SCAN_ABOVE = 5000
# Statuses an import may never move a stored subscriber out of: they left, or their mail bounced.
_STICKY = {
    SubscriberStatus.UNSUBSCRIBED.value,
    SubscriberStatus.BOUNCED.value,
    SubscriberStatus.COMPLAINED.value,
}


PERSON_FIELDS = ("name", "timezone", "send_hour")
SUBSCRIPTION_FIELDS = (
    "status",
    "cadence",
    "topics",
    "confirmed_at",
    "unsubscribed_at",
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_wording",
    "created_at",
    "alerts",
)


def only(values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in fields}


def update_rows(session: Session, model: type, changes: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (which needs the same keys in every dict of one call)."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_shape.setdefault(tuple(sorted(change)), []).append(change)
    for group in by_shape.values():
        for chunk in in_batches(group, CHUNK):
            session.execute(sa.update(model), chunk)


def existing_rows(
    session: Session,
    table: sa.Table,
    key: sa.Column[Any],
    keys: list[Any],
    *where: sa.ColumnElement[bool],
) -> dict[Any, dict[str, Any]]:
    """The rows of ``table`` whose ``key`` is among ``keys``, by key."""
    found: dict[Any, dict[str, Any]] = {}
    if len(keys) > _SCAN_ABOVE:
        # One pass over the table beats many IN look-ups for a big file, and does not depend
        # on planner statistics: right after a large import PostgreSQL has not analysed the
        # table yet, and its IN look-ups turn into a sequential scan per chunk.
        wanted = set(keys)
        query = sa.select(table).where(*where).execution_options(yield_per=CHUNK)
        for row in session.execute(query).mappings():
            if row[key.name] in wanted:
                found[row[key.name]] = dict(row)
        return found
    for chunk in in_batches(keys, CHUNK):
        query = sa.select(table).where(key.in_(chunk), *where)
        for row in session.execute(query).mappings():
            found[row[key.name]] = dict(row)
    return found


def new_person(values: dict[str, Any], now: datetime, tz: str, hour: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "email": values["email"],
        "name": "",
        "timezone": tz,
        "send_hour": hour,
        "created_at": now,
        "updated_at": now,
    }
    row.update(only(values, PERSON_FIELDS))
    return row


def new_subscription(
    values: dict[str, Any], person_id: int, newsletter_id: int, now: datetime
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "subscriber_id": person_id,
        "newsletter_id": newsletter_id,
        "cadence": "daily",
        "topics": [],
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
        "alerts": False,
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


def changes(current: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
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
