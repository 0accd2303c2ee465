"""Emptying a PostgreSQL store between tests, as a fresh one stands after `digest db upgrade`."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers the tables)

TABLES = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]


def empty(conn: sa.Connection) -> None:
    """Every table emptied, ids from 1 again, and the first newsletter back as migration 0008
    makes it: a store always has it."""
    conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    conn.execute(
        sa.text(
            "INSERT INTO newsletters (slug, name, description, cadences, default_cadence,"
            " topics, public, position, former_slugs, created_at, updated_at) VALUES"
            " ('digest', 'digest', '', '[\"daily\", \"weekly\"]', 'daily', '[]', true, 0,"
            " '[]', now(), now())"
        )
    )
