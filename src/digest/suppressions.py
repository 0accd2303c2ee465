"""The suppression list: one-way hashes of addresses that no import or operator may add again.

An erased, hard-bounced or complaining address goes on it, as a hash only; the person
themselves takes it off by asking through the public form and confirming.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest.addresses import email_hash, hash_normalized
from digest.clock import utcnow
from digest.db import IN_BATCH, dialect_insert, in_batches
from digest.models import Suppression


def is_suppressed(session: Session, email: str) -> bool:
    """Whether the address was erased, hard-bounced or complained about."""
    digest = email_hash(email)
    return (
        session.exec(select(Suppression.id).where(Suppression.email_hash == digest)).first()
        is not None
    )


def suppressed_among(session: Session, emails: Iterable[str], *, batch: int = IN_BATCH) -> set[str]:
    """Which of these normalised addresses are suppressed: a whole import file in few queries."""
    hashes = {hash_normalized(email): email for email in emails}
    found: set[str] = set()
    for chunk in in_batches(list(hashes), batch):
        rows = session.exec(
            select(Suppression.email_hash).where(col(Suppression.email_hash).in_(chunk))
        )
        found.update(hashes[digest] for digest in rows)
    return found


def suppress(session: Session, email: str, reason: str) -> None:
    """Put the address's hash on the suppression list (idempotent, and safe when two
    transactions suppress the same address at once: the second insert does nothing)."""
    insert = dialect_insert(session)
    session.flush()
    session.execute(
        insert(Suppression.__table__)  # type: ignore[attr-defined]
        .values(email_hash=email_hash(email), reason=reason, created_at=utcnow())
        .on_conflict_do_nothing()
    )


def lift(session: Session, email: str) -> None:
    """Take the address off the list: the person asked again themselves and confirmed."""
    session.execute(sa.delete(Suppression).where(col(Suppression.email_hash) == email_hash(email)))
