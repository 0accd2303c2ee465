"""The two stores a benchmark runs on: a temporary SQLite file and a throwaway PostgreSQL
database, each made empty for the run and removed after it."""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from digest.db import Database

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def stores(pg_admin_url: str = DEFAULT_PG) -> Iterator[tuple[str, Database]]:
    """("SQLite" | "PostgreSQL", an empty Database) in turn, each removed after its turn;
    PostgreSQL is skipped with a note on stderr when no server answers."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            yield "SQLite", db
        finally:
            db.dispose()
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable, skipped: {exc}", file=sys.stderr)
        return
    url = sa.engine.make_url(pg_admin_url).set(database=name)
    db = Database(url.render_as_string(hide_password=False))
    try:
        yield "PostgreSQL", db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}"'))
