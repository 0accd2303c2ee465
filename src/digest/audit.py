"""The audit log: every change made through the desk, the admin API or the CLI, with who made
it, when, from where, what, and the values before and after where they matter.

``record`` writes in the caller's session, so an entry is committed with the change it
describes or not at all. An erased subscriber appears by the hash the suppression list keeps,
never by address.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.clock import utcnow
from digest.models import AuditEntry

if TYPE_CHECKING:
    from digest.db import Database

#: The most entries one page or ``digest audit`` shows.
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Actor:
    """Who makes a change, through which face, from where."""

    via: str  # "desk", "api" or "cli"
    name: str  # a desk account's address, "admin token", or the OS user of the CLI
    source: str | None = None  # the client's IP, or the host the CLI ran on

    @classmethod
    def cli(cls) -> Actor:
        """The person at this terminal: their OS user name on this host."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls("cli", user, socket.gethostname())

    @classmethod
    def api(cls, ip: str | None) -> Actor:
        """A program holding the admin token, calling from ``ip``."""
        return cls("api", "admin token", ip)


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: str = "",
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add one entry to the log in ``session`` (committed with the change it describes)."""
    entry = AuditEntry(
        at=at or utcnow(),
        via=actor.via,
        actor=actor.name[:320],
        source=(actor.source or None) and actor.source[:255],
        action=action[:64],
        target=target[:400],
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(entry)
    return entry


def record_after(
    db: Database,
    actor: Actor,
    action: str,
    target: str = "",
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a change that a function committed in its own transaction (an alert, an
    edition, a feed check): the entry follows in a transaction of its own, right after."""
    with db.transaction() as session:
        record(session, actor, action, target, before=before, after=after)


def forget(session: Session, addresses: Iterable[str], digest: str) -> None:
    """After an erasure: the entries that named the person by address name them by the hash
    the suppression list keeps, and lose their before/after (which held their name, their
    choices); that a change was made, when and by whom, stays."""
    names = sorted({address.lower() for address in addresses if address})
    session.execute(
        sa.update(AuditEntry)
        .where(sa.func.lower(col(AuditEntry.target)).in_(names))
        .values(target=digest, before=sa.null(), after=sa.null())
    )


def recent(
    session: Session,
    *,
    limit: int = 50,
    before_id: int | None = None,
    action: str | None = None,
) -> Sequence[AuditEntry]:
    """The newest entries first, at most ``limit``, older than ``before_id`` when given
    (keyset pagination: each page costs the same however long the log grows)."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(min(limit, MAX_LIMIT))
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    if action:
        query = query.where(col(AuditEntry.action) == action)
    return session.exec(query).all()


def count(session: Session) -> int:
    """How many entries the log holds."""
    return int(session.exec(select(sa.func.count()).select_from(AuditEntry)).one())


def as_dict(entry: AuditEntry) -> dict[str, Any]:
    """One entry as the JSON ``digest audit --json`` prints."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "via": entry.via,
        "actor": entry.actor,
        "source": entry.source,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
    }


#: Bookkeeping a change sets by itself: not what anyone changed.
_BOOKKEEPING = frozenset({"id", "created_at", "updated_at"})


def changes(
    before: dict[str, Any] | None, after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that differ, as (before, after); every set field of a new row (``before``
    None) as ``after``."""
    if before is None:
        return {}, {k: v for k, v in after.items() if k not in _BOOKKEEPING and v is not None}
    keys = [k for k in after if k not in _BOOKKEEPING and before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {key: _plain(value) for key, value in values.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
