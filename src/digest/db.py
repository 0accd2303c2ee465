"""Engines, sessions and migrations: the only module that knows which database it talks to.

SQLite runs with WAL, foreign keys and a busy timeout; PostgreSQL through psycopg 3. Callers
open one transaction with ``Database.transaction()`` and pass the session to the store modules
(``subscribers``, ``posts.store``, ``delivery.outbox``...), so every multi-step write is one
transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from digest.config import Settings
from digest.errors import StoreUnavailable, first_line
from digest.resources import alembic_dir
from digest.settings_report import store_location

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every digest process.
_MIGRATION_LOCK = 0x6469676573
#: Values per ``IN (...)`` list: far below SQLite's and PostgreSQL's caps on parameters.
IN_BATCH = 500
T = TypeVar("T")


def dialect_insert(session: Session) -> Any:
    """The store's own ``insert`` construct: both PostgreSQL's and SQLite's have
    ``on_conflict_do_nothing``, which the generic one lacks."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


_READING = "digest_reading"


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine for the URL, with SQLite's pragmas set on every connection."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        # No folder is made here: only ``Database.upgrade`` creates a store.
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling would defer BEGIN; we issue it ourselves so
            # that a claim or an import holds the write lock from its first statement.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # A reading session (``Database.reading``) takes no write lock: in WAL mode its
            # snapshot never holds up the writer.
            reading = conn.get_execution_options().get(_READING, False)
            conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return sa.create_engine(url, **kwargs)


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner alone (0600), before SQLite writes to it.

    It holds addresses and consent IPs; SQLite gives the -wal and -shm files it makes later the
    database file's mode. An existing file keeps the mode its owner gave it.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# A migration file's own revision and the one it follows, as Alembic writes them.
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=\s*(.+)$", re.M)


@cache
def shipped_head() -> str | None:
    """The newest migration shipped with this version of digest, read from the migration files
    as text: every command checks it, and Alembic costs a command most of its start-up.

    Falls back to Alembic for any shape the text reading does not know (a merge, two heads).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((alembic_dir() / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return _alembic_head()
        revisions.add(revision.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for our migrations folder and this database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(alembic_dir()))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


class Database:
    """One store: its engine, its sessions, its schema."""

    def __init__(self, database_url: str, **engine_kwargs: Any) -> None:
        self.url = database_url
        self.engine = make_engine(database_url, **engine_kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The store named by ``DIGEST_DATABASE_URL``."""
        return cls(settings.database_url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            raise _unavailable(exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session in one transaction that only reads: on SQLite it holds no write lock, so
        a long read (list hygiene's review) does not hold up every writer. Never write in it:
        SQLite could refuse to turn it into a writing one."""
        try:
            reader = self.engine.execution_options(**{_READING: True})
            with Session(reader, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as exc:
            raise _unavailable(exc) from exc

    def head_revision(self) -> str | None:
        """The newest migration shipped with this version of digest."""
        return shipped_head()

    def current_revision(self) -> str | None:
        """The migration the store is at, None for an empty store."""
        try:
            with self.engine.connect() as conn:
                # Alembic's own table, read without loading Alembic.
                if not sa.inspect(conn).has_table("alembic_version"):
                    return None
                found = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                return found.scalar_one_or_none()
        except OperationalError as exc:
            raise _unavailable(exc) from exc

    def _sqlite_file(self) -> Path | None:
        """The SQLite file of the store; None for PostgreSQL or an in-memory database."""
        url = make_url(self.url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    def exists(self) -> bool:
        """Whether the store was created: its SQLite file is there, or the PostgreSQL database
        has our tables. Looking makes no file."""
        path = self._sqlite_file()
        if path is not None:
            return path.exists()
        return self.dialect == "sqlite" or self.current_revision() is not None

    def require(self) -> None:
        """StoreUnavailable, naming the store and ``digest db upgrade``, unless it exists.

        Every command but ``db upgrade``, ``demo`` and ``serve`` asks this first: a command run
        from another folder must not make an empty store there and go on as if it were ours.
        """
        if not self.exists():
            raise StoreUnavailable(
                f"no store at {store_location(self.url)}: create it with `digest db upgrade` "
                "(or set DIGEST_DATABASE_URL, or DIGEST_VAR_DIR, to the one in use)"
            )

    def upgrade(self) -> tuple[str | None, str | None]:
        """Create the store if need be and apply every pending migration; returns (before,
        after) revisions."""
        from alembic import command

        path = self._sqlite_file()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
        before = self.current_revision()
        try:
            with self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    # Two processes starting on a new store must not both build it.
                    conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                    conn.commit()
                try:
                    cfg = alembic_config(self.url)
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    conn.commit()
                finally:
                    if self.dialect == "postgresql":
                        conn.execute(
                            sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK}
                        )
                        conn.commit()
        except OperationalError as exc:
            raise _unavailable(exc) from exc
        return before, self.current_revision()

    def ensure_schema(self) -> None:
        """Bring the store to the newest schema if it is behind (other commands call this)."""
        if self.current_revision() != self.head_revision():
            self.upgrade()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except OperationalError as exc:
            raise _unavailable(exc) from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _unavailable(exc: OperationalError) -> StoreUnavailable:
    return StoreUnavailable(f"cannot use the database: {first_line(exc.orig or exc)}")


def in_batches(items: Sequence[T], size: int = IN_BATCH) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``: how a long ``IN (...)`` list is sent, since
    SQLite and PostgreSQL both cap the parameters of one statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
