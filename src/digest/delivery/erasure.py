"""Erasing a person's mail from the outbox: every row that names them, and the bodies that were
theirs alone. Shared bodies (an edition's, an announcement's, an alert's) name nobody and stay:
deleting one would cascade into every other reader's delivery of it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col

from digest.db import in_batches
from digest.models import Body, Delivery
from digest.states import DeliveryKind

D = Delivery.__table__  # type: ignore[attr-defined]
B = Body.__table__  # type: ignore[attr-defined]


def erase_for(session: Session, *, subscriber_id: int | None, address: str) -> int:
    """Delete every row of a person's mail: theirs by id, and any addressed to ``address``,
    with the bodies of their transactional mail (sent or skipped: each has its own).

    Explicit although the foreign key cascades: SQLite without foreign keys, or a row
    addressed only by email (a test copy), must not keep them. Returns how many rows went.
    """
    theirs = D.c.to_email == address
    if subscriber_id is not None:
        theirs = sa.or_(D.c.subscriber_id == subscriber_id, theirs)
    # An edition's bodies are shared and name nobody; a transactional one is that mail's alone.
    # An announcement's or alert's body is shared too (no edition): deleting it would cascade.
    shared = D.c.kind.in_((DeliveryKind.ANNOUNCEMENT.value, DeliveryKind.ALERT.value))
    own_bodies = [
        r[0]
        for r in session.execute(
            sa.select(D.c.body_id).where(
                theirs, D.c.edition_id.is_(None), D.c.body_id.isnot(None), ~shared
            )
        )
    ]
    n = 0
    if subscriber_id is not None:
        by_id = sa.delete(Delivery).where(col(Delivery.subscriber_id) == subscriber_id)
        n += int(session.execute(by_id).rowcount or 0)  # type: ignore[attr-defined]
    to_address = sa.delete(Delivery).where(col(Delivery.to_email) == address)
    n += int(session.execute(to_address).rowcount or 0)  # type: ignore[attr-defined]
    for chunk in in_batches(sorted(set(own_bodies))):
        session.execute(sa.delete(B).where(B.c.id.in_(chunk), B.c.edition_id.is_(None)))
    return n
