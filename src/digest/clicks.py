"""Folding recorded clicks into the counts: ``fold(db, settings, now)``.

The web processes append raw events to ``click_events`` (``web/click_recorder.py``); a fold
takes the events whose bursts are over (``click_rules.due``), classifies them per copy
(``click_rules.machine_flags``) and, in one transaction, adds them to ``link_clicks`` and
``mail_copies`` (and, with per-reader tracking, ``reader_clicks`` and the subscription's
``last_click_at``), then deletes them. Every web process folds about once a second while
events wait (``digest stats`` folds before it reads); on PostgreSQL one advisory lock lets
one fold run at a time (SQLite has one writer anyway), so no event is counted twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from digest import click_rules
from digest.config import Settings
from digest.db import Database, dialect_insert, in_batches
from digest.models import Subscriber, Subscription
from digest.models_engagement import ClickEvent, LinkClick, MailCopy, ReaderClick
from digest.tracking import MailKind, MailRef, TrackingMode, reader_tag

# Any constant; the same in every digest process.
_FOLD_LOCK = 0x636C69636B
log = logging.getLogger(__name__)
_EVENTS = ClickEvent.__table__  # type: ignore[attr-defined]
_LINKS = LinkClick.__table__  # type: ignore[attr-defined]
_COPIES = MailCopy.__table__  # type: ignore[attr-defined]
_READERS = ReaderClick.__table__  # type: ignore[attr-defined]
_SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]
_SUBSCRIBERS = Subscriber.__table__  # type: ignore[attr-defined]
_MAIL_TABLES = {
    MailKind.EDITION: "editions",
    MailKind.ANNOUNCEMENT: "announcements",
    MailKind.ALERT: "alerts",
}


@dataclass(frozen=True)
class Folded:
    """What one fold did: events counted, and events still waiting for their burst to end."""

    counted: int
    waiting: int


def record(db: Database, events: list[dict[str, Any]]) -> bool:
    """Store a batch of click events (the recorder's flush) in one transaction.

    StoreUnavailable when the store is down for now (the caller keeps the batch); False when
    the store refused these rows themselves (they would fail again: dropped, logged).
    """
    try:
        with db.transaction() as session:
            session.execute(sa.insert(_EVENTS), events)
    except (IntegrityError, DBAPIError):
        log.exception("%d click events could not be stored and were dropped", len(events))
        return False
    return True


def forget_reader(session: Session, subscriber_id: int) -> None:
    """An erasure: the person's clicks and their copies' tags go (per-reader tracking kept
    them); the per-link counts stay, as they name nobody."""
    session.execute(sa.delete(_EVENTS).where(_EVENTS.c.subscriber_id == subscriber_id))
    readers = ReaderClick.__table__  # type: ignore[attr-defined]
    session.execute(sa.delete(readers).where(readers.c.subscriber_id == subscriber_id))
    copies = MailCopy.__table__  # type: ignore[attr-defined]
    session.execute(sa.delete(copies).where(copies.c.copy_tag == reader_tag(subscriber_id)))


def fold(db: Database, settings: Settings, now: datetime) -> Folded:
    """Count every click event that can be counted at ``now``, in one transaction."""
    with db.transaction() as session:
        return fold_in(session, settings, now)


def fold_in(session: Session, settings: Settings, now: datetime) -> Folded:
    """``fold`` in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _FOLD_LOCK})
    total = session.execute(sa.select(sa.func.count()).select_from(_EVENTS)).scalar_one()
    rows = _candidates(session, now) if total else []
    if settings.tracking != TrackingMode.PER_READER:
        # Recorded under per-reader tracking, folded after it was turned off: the reader's id
        # (and the tag that is the id) go with it.
        rows = [
            {**r, "copy_tag": None, "subscriber_id": None} if r["subscriber_id"] else r
            for r in rows
        ]
    machine, ready = _judge(rows, now.timestamp())
    done = [r for r in rows if ready[r["id"]]]
    if not done:
        return Folded(0, total)
    counted = _without_opted_out(session, done)
    _count_links(session, [r for r in counted if r["kind"] == "click"], machine)
    _count_copies(session, counted, machine)
    if settings.tracking == TrackingMode.PER_READER:
        _count_readers(session, [r for r in counted if r["kind"] == "click"], machine)
    for ids in in_batches([r["id"] for r in done]):
        session.execute(sa.delete(_EVENTS).where(_EVENTS.c.id.in_(ids)))
    return Folded(len(counted), total - len(done))


def _candidates(session: Session, now: datetime) -> list[Any]:
    """The events that may be due at ``now``, each with every other event of its copy (the
    context its burst is judged in): only about a second's worth of events is read per fold,
    not every event still waiting for its burst to end."""
    cutoff = now - timedelta(seconds=click_rules.SETTLE_SECONDS)
    settled = sa.select(_EVENTS.c.copy_tag).where(_EVENTS.c.at <= cutoff).distinct()
    tags = sorted(t for t in session.execute(settled).scalars() if t is not None)
    rows = list(
        session.execute(
            sa.select(_EVENTS).where(_EVENTS.c.copy_tag.is_(None), _EVENTS.c.at <= cutoff)
        ).mappings()
    )
    for chunk in in_batches(tags):
        rows += session.execute(sa.select(_EVENTS).where(_EVENTS.c.copy_tag.in_(chunk))).mappings()
    return rows


def _judge(rows: Sequence[Any], now: float) -> tuple[dict[int, bool], dict[int, bool]]:
    """For each event by id: whether it was a machine's, and whether it can be counted now."""
    clicks = [r for r in rows if r["kind"] == "click"]
    # A copy is one mail's copy: a reader's tag (per-reader tracking) is the same in every mail.
    hits = [
        click_rules.Hit(
            None if r["copy_tag"] is None else f"{r['mail']}/{r['copy_tag']}",
            r["url_key"],
            r["at"].timestamp(),
            r["machine"],
        )
        for r in clicks
    ]
    ids = [r["id"] for r in clicks]
    machine = dict(zip(ids, click_rules.machine_flags(hits), strict=True))
    ready = dict(zip(ids, click_rules.due(hits, now), strict=True))
    for r in rows:
        if r["kind"] != "click":  # an open is judged by its own request alone
            ready[r["id"]] = r["at"].timestamp() <= now - click_rules.SETTLE_SECONDS
            machine[r["id"]] = r["machine"] or r["proxy"]
    return machine, ready


def _without_opted_out(session: Session, rows: list[Any]) -> list[Any]:
    """The events but those of readers who opted out (or were erased) since the mail went."""
    readers = sorted({r["subscriber_id"] for r in rows if r["subscriber_id"] is not None})
    keep: set[int] = set()
    for ids in in_batches(readers):
        keep.update(
            session.execute(
                sa.select(_SUBSCRIBERS.c.id).where(
                    _SUBSCRIBERS.c.id.in_(ids), _SUBSCRIBERS.c.tracking_opt_out.is_(False)
                )
            ).scalars()
        )
    return [r for r in rows if r["subscriber_id"] is None or r["subscriber_id"] in keep]


def _earlier(table: sa.Table, excluded: Any, column: str) -> Any:
    """``column`` set to the earlier of the stored and the new time (None counts as later)."""
    old, new = table.c[column], excluded[column]
    return sa.case((new.is_(None), old), (old.is_(None), new), (new < old, new), else_=old)


def _count_links(session: Session, rows: list[Any], machine: dict[int, bool]) -> None:
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        entry = totals.setdefault(
            (r["mail"], r["url_key"]),
            {"mail": r["mail"], "url_key": r["url_key"], "url": r["url"], "human": 0,
             "machine": 0, "first_at": r["at"], "last_at": r["at"]},
        )  # fmt: skip
        entry["machine" if machine[r["id"]] else "human"] += 1
        entry["first_at"] = min(entry["first_at"], r["at"])
        entry["last_at"] = max(entry["last_at"], r["at"])
    if not totals:
        return
    insert = dialect_insert(session)(_LINKS)
    new = insert.excluded
    later = sa.case((_LINKS.c.last_at.is_(None), new.last_at), (new.last_at > _LINKS.c.last_at,
                    new.last_at), else_=_LINKS.c.last_at)  # fmt: skip
    statement = insert.on_conflict_do_update(
        index_elements=[_LINKS.c.mail, _LINKS.c.url_key],
        set_={
            "human": _LINKS.c.human + new.human,
            "machine": _LINKS.c.machine + new.machine,
            "first_at": _earlier(_LINKS, new, "first_at"),
            "last_at": later,
        },
    )
    session.execute(statement, list(totals.values()))


def _count_copies(session: Session, rows: list[Any], machine: dict[int, bool]) -> None:
    """A row per clicked or opened copy, with the first time of each kind of event."""
    firsts: dict[tuple[str, str], dict[str, Any]] = {}
    columns = ("human_click_at", "machine_click_at", "opened_at", "proxy_open_at")
    for r in rows:
        if r["copy_tag"] is None:
            continue
        entry = firsts.setdefault(
            (r["mail"], r["copy_tag"]),
            {"mail": r["mail"], "copy_tag": r["copy_tag"], **dict.fromkeys(columns)},
        )
        if r["kind"] == "click":
            column = "machine_click_at" if machine[r["id"]] else "human_click_at"
        else:
            column = "proxy_open_at" if machine[r["id"]] else "opened_at"
        if entry[column] is None or r["at"] < entry[column]:
            entry[column] = r["at"]
    if not firsts:
        return
    insert = dialect_insert(session)(_COPIES)
    statement = insert.on_conflict_do_update(
        index_elements=[_COPIES.c.mail, _COPIES.c.copy_tag],
        set_={c: _earlier(_COPIES, insert.excluded, c) for c in columns},
    )
    session.execute(statement, list(firsts.values()))


def _count_readers(session: Session, rows: list[Any], machine: dict[int, bool]) -> None:
    """Per-reader tracking: each reader's clicks, and their subscription's last human click."""
    mine = [r for r in rows if r["subscriber_id"] is not None]
    if not mine:
        return
    session.execute(
        sa.insert(_READERS),
        [
            {"subscriber_id": r["subscriber_id"], "mail": r["mail"], "url": r["url"],
             "at": r["at"], "machine": machine[r["id"]]}
            for r in mine
        ],
    )  # fmt: skip
    newsletters = newsletters_of(session, {r["mail"] for r in mine})
    last: dict[tuple[int, int], datetime] = {}
    for r in mine:
        newsletter = newsletters.get(r["mail"])
        if machine[r["id"]] or newsletter is None:
            continue
        key = (r["subscriber_id"], newsletter)
        last[key] = max(last.get(key, r["at"]), r["at"])
    subs = _SUBSCRIPTIONS.c
    for (subscriber_id, newsletter_id), at in sorted(last.items()):
        session.execute(
            sa.update(_SUBSCRIPTIONS)
            .where(
                subs.subscriber_id == subscriber_id,
                subs.newsletter_id == newsletter_id,
                sa.or_(subs.last_click_at.is_(None), subs.last_click_at < at),
            )
            .values(last_click_at=at)
        )


def newsletters_of(session: Session, mails: set[str]) -> dict[str, int]:
    """The newsletter each mail (``e12``, ``a3``, ``l7``) went out for."""
    ids: dict[MailKind, list[int]] = defaultdict(list)
    for text in mails:
        ref = MailRef.parse(text)
        ids[ref.kind].append(ref.id)
    found: dict[str, int] = {}
    for kind, numbers in ids.items():
        table = sa.table(_MAIL_TABLES[kind], sa.column("id"), sa.column("newsletter_id"))
        for chunk in in_batches(sorted(numbers)):
            for mail_id, newsletter_id in session.execute(
                sa.select(table.c.id, table.c.newsletter_id).where(table.c.id.in_(chunk))
            ):
                found[str(MailRef(kind, mail_id))] = newsletter_id
    return found
