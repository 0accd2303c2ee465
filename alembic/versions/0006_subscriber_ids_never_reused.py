"""Subscriber ids are never reused: SQLite's AUTOINCREMENT on ``subscribers``.

A link's token names a subscriber by id (and address). Without AUTOINCREMENT SQLite hands out
``max(id) + 1``, so once the newest subscriber is erased the next one gets their id, and when
that is the same address signing up again, the erased person's old unsubscribe and preference
links act on the new subscription. PostgreSQL's sequences never go back: nothing to do there.

SQLite adds AUTOINCREMENT only to a table made anew. Dropping the old table deletes, through
``ON DELETE CASCADE``, every delivery that names a subscriber: foreign keys are on, and inside
a transaction the pragma cannot turn them off (renaming the table aside does not help either:
SQLite then points the deliveries at the renamed table). So those deliveries are kept aside in
a temporary table and put back once the new table stands, all in the migration's transaction.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW = "_subscribers_0006"


def _rebuild(*, autoincrement: bool) -> None:
    """Make ``subscribers`` anew, same columns, rows and indexes, with or without AUTOINCREMENT."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    old = sa.Table("subscribers", sa.MetaData(), autoload_with=bind)
    new = op.create_table(
        _NEW,
        *(
            sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key)
            for c in old.columns
        ),
        sqlite_autoincrement=autoincrement,
    )
    op.execute(sa.insert(new).from_select([c.name for c in old.columns], sa.select(old)))
    op.execute(
        "CREATE TEMPORARY TABLE _deliveries_0006 AS "
        "SELECT * FROM deliveries WHERE subscriber_id IS NOT NULL"
    )
    op.drop_table("subscribers")  # its indexes go with it; the cascade empties what was kept
    op.rename_table(_NEW, "subscribers")
    op.execute("INSERT INTO deliveries SELECT * FROM _deliveries_0006")
    op.execute("DROP TABLE _deliveries_0006")
    for index in old.indexes:
        if index.name:
            columns = [c.name for c in index.columns]
            op.create_index(index.name, "subscribers", columns, unique=bool(index.unique))


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
