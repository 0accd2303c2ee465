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
    for name, (db,) in store_sets(pg_admin_url):
        yield name, db


def store_sets(
    pg_admin_url: str = DEFAULT_PG, count: int = 1, kinds: str = "sqlite,pg"
) -> Iterator[tuple[str, tuple[Database, ...]]]:
    """Like ``stores``, with ``count`` empty databases of each kind (of ``kinds``) side by
    side."""
    if "sqlite" in kinds:
        yield from _sqlite_set(count)
    if "pg" in kinds:
        yield from _pg_set(pg_admin_url, count)


def _sqlite_set(count: int) -> Iterator[tuple[str, tuple[Database, ...]]]:
    with tempfile.TemporaryDirectory() as tmp:
        dbs = tuple(Database(f"sqlite:///{Path(tmp) / f'bench{i}.db'}") for i in range(count))
        try:
            yield "SQLite", dbs
        finally:
            for db in dbs:
                db.dispose()


def _pg_set(pg_admin_url: str, count: int) -> Iterator[tuple[str, tuple[Database, ...]]]:
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    names = [f"digest_bench_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable, skipped: {exc}", file=sys.stderr)
        return
    urls = [sa.engine.make_url(pg_admin_url).set(database=name) for name in names]
    dbs = tuple(Database(url.render_as_string(hide_password=False)) for url in urls)
    try:
        yield "PostgreSQL", dbs
    finally:
        for db in dbs:
            db.dispose()
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
