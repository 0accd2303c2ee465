"""Shared fixtures: a real store on SQLite and on PostgreSQL, settings, the CLI's environment.

The ``db`` fixture is parametrised over both databases, so every test that uses it runs twice.
The PostgreSQL half uses a database of its own per test session (created and dropped here), so
several test runs can share one server. It skips when no server answers, except under CI
(``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import digest.models  # noqa: F401  (registers every table on SQLModel.metadata)
from digest.config import Settings, load_settings
from digest.db import Database
from tests.support.esp_server import esp_server  # noqa: F401
from tests.support.programs import IN_CI
from tests.support.smtp_server import faulty_smtp_server, smtp_server  # noqa: F401
from tests.support.sns import fake_sns  # noqa: F401

# Real aiosmtpd servers (a recording one and a fault-injecting one) for any test.
from tests.support.stores import empty

PG_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TABLES = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]


def _pg_admin_engine() -> sa.Engine | None:
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError:
        engine.dispose()
        return None
    return engine


@contextmanager
def _pg_database() -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped afterwards."""
    admin = _pg_admin_engine()
    if admin is None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL} and CI=true: it must run")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    name = f"digest_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """A command run inside a test puts digest's log handler on that test's captured stderr;
    it must go with the test, or a server thread still running (an SMTP server whose client
    was killed) logs through it into a closed stream, into a later test's output."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test session."""
    with _pg_database() as url:
        Database(url).upgrade()
        yield url


@pytest.fixture
def pg_empty_database_url() -> Iterator[str]:
    """URL of a PostgreSQL database that exists but has none of digest's tables."""
    with _pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


def _sqlite_db(template: Path, tmp_path: Path, name: str = "digest.db") -> Database:
    path = tmp_path / name
    shutil.copy(template, path)
    return Database(f"sqlite:///{path}")


def _pg_db(url: str) -> Database:
    db = Database(url)
    with db.engine.begin() as conn:
        empty(conn)
    return db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated, empty store: SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        database = _sqlite_db(sqlite_template, tmp_path)
    else:
        database = _pg_db(request.getfixturevalue("pg_database_url"))
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated, empty SQLite store, for tests that need only one database."""
    database = _sqlite_db(sqlite_template, tmp_path, "single.db")
    yield database
    database.dispose()


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Build Settings for a test: no .env or DIGEST_* from the outside leaks in."""
    for key in list(os.environ):
        if key.startswith("DIGEST_") and key != "DIGEST_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path / 'var' / 'digest.db'}",
            "smtp_url": f"file:{tmp_path / 'outbox'}",
            "secret_key": "test-secret-key-0123456789-abcdefghijklmnop",
            "var_dir": tmp_path / "var",
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@pytest.fixture
def settings(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    """Settings pointing at the ``db`` store."""
    return make_settings(database_url=db.url)


@pytest.fixture
def cli_env(db: Database, make_settings, monkeypatch: pytest.MonkeyPatch) -> Database:  # type: ignore[no-untyped-def]
    """``db`` as the ``digest`` command sees it: through DIGEST_* variables, nothing else set."""
    make_settings()  # clears DIGEST_* and moves into a temporary folder
    monkeypatch.setenv("DIGEST_DATABASE_URL", db.url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    return db
