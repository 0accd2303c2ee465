"""Migrations build the whole schema, agree with the models, and go down and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from digest.db import Database, alembic_config


def _diff(db: Database) -> list:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)


def test_models_and_migrations_agree(db: Database) -> None:
    assert db.current_revision() == db.head_revision()
    assert _diff(db) == []


def test_downgrade_to_base_and_upgrade_to_head(db: Database) -> None:
    cfg = alembic_config(db.url)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
        conn.commit()
    tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert tables == set()
    db.upgrade()
    assert set(sa.inspect(db.engine).get_table_names()) >= {
        t.name for t in SQLModel.metadata.sorted_tables
    }
    assert _diff(db) == []


def test_sqlite_runs_with_wal_and_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_other_commands_migrate_a_new_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path}/fresh.db")
    assert db.current_revision() is None
    db.ensure_schema()
    assert db.current_revision() == db.head_revision()
    db.ensure_schema()  # a second call is a no-op
    db.dispose()
