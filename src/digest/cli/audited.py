"""How a command that changes the store writes it to the audit log, as the person at this
terminal (``Actor.cli()``): in the command's own transaction when it has one, so the entry is
committed with the change or not at all, or right after a change its function committed itself.
What ``before`` and ``after`` show of a row is in ``digest.audit_states``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from digest import audit
from digest.audit import Actor

if TYPE_CHECKING:
    from sqlmodel import Session

    from digest.db import Database


def note(
    session: Session,
    action: str,
    target: str = "",
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record the command's change in its transaction (``session``)."""
    audit.record(session, Actor.cli(), action, target, before=before, after=after)


def note_apart(
    db: Database,
    action: str,
    target: str = "",
    *,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a change its store function committed in a transaction of its own (a feed
    check, an alert, an edition): the entry follows in the next transaction."""
    audit.record_after(db, Actor.cli(), action, target, after=after)
