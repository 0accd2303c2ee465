"""Migrations build the whole schema, agree with the models, and go down and up again."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from digest import newsletters
from digest.db import Database, alembic_config


def _diff(db: Database) -> list:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, SQLModel.metadata)


def test_models_and_migrations_agree(db: Database) -> None:
    assert db.current_revision() == db.head_revision()
    assert _diff(db) == []


def test_the_message_id_index_is_partial_on_both_stores(db: Database) -> None:
    """The model names the index without its where clause (see models.Delivery), and Alembic
    compares no where clauses: the store itself must still leave digests out of it."""
    indexes = {i["name"]: i for i in sa.inspect(db.engine).get_indexes("deliveries")}
    options = indexes["ix_deliveries_message_id"]["dialect_options"]
    dialect = db.engine.dialect.name
    # As each store spells the clause back: PostgreSQL in its own normal form.
    expected = {"sqlite": "kind != 'digest'", "postgresql": "((kind)::text <> 'digest'::text)"}
    assert " ".join(str(options[f"{dialect}_where"]).split()) == expected[dialect]


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


def _at(db: Database, revision: str, direction: str = "upgrade") -> None:
    cfg = alembic_config(db.url)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)
        conn.commit()


def test_0006_keeps_every_row_and_ids_are_never_reused_after(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Made anew for AUTOINCREMENT, the SQLite subscribers table keeps its rows, indexes and
    the deliveries that name them (a plain rebuild would have cascaded them away)."""
    db = Database(f"sqlite:///{tmp_path}/old.db")
    _at(db, "0002")
    now = "2026-11-30 07:00:00.000000"
    with db.engine.begin() as conn:
        for sid, email in ((1, "ann@example.com"), (2, "bob@example.com"), (3, "cy@example.com")):
            conn.execute(
                sa.text(
                    "INSERT INTO subscribers (id, email, name, status, cadence, topics, timezone,"
                    " send_hour, created_at, updated_at) VALUES (:id, :email, 'N', 'active',"
                    " 'daily', '[\"World\"]', 'UTC', 7, :now, :now)"
                ),
                {"id": sid, "email": email, "now": now},
            )
        for did, sid in ((1, 1), (2, 2), (3, None)):
            conn.execute(
                sa.text(
                    "INSERT INTO deliveries (id, kind, subscriber_id, to_email, status, attempts,"
                    " next_attempt_at, message_id, created_at, updated_at) VALUES (:id, 'confirm',"
                    " :sid, 'x@example.com', 'queued', 0, :now, :mid, :now, :now)"
                ),
                {"id": did, "sid": sid, "now": now, "mid": f"<{did}@example.com>"},
            )
        conn.execute(sa.text("DELETE FROM subscribers WHERE id = 3"))
    _at(db, "0007")
    with db.engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, email, topics FROM subscribers ORDER BY id"))
        assert [tuple(r) for r in rows] == [
            (1, "ann@example.com", '["World"]'),
            (2, "bob@example.com", '["World"]'),
        ]
        kept = conn.execute(sa.text("SELECT id, subscriber_id FROM deliveries ORDER BY id"))
        assert [tuple(r) for r in kept] == [(1, 1), (2, 2), (3, None)]
        assert conn.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        conn.execute(sa.text("DELETE FROM subscribers WHERE id = 2"))  # cascades, as before
        assert conn.execute(sa.text("SELECT count(*) FROM deliveries")).scalar() == 2
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (email, name, status, cadence, topics, timezone,"
                " send_hour, created_at, updated_at) VALUES ('bob@example.com', '', 'pending',"
                " 'daily', '[]', 'UTC', 7, :now, :now)"
            ),
            {"now": now},
        )
        new_id = conn.execute(
            sa.text("SELECT id FROM subscribers WHERE email = 'bob@example.com'")
        ).scalar()
    assert new_id == 3  # not 2 again: that id is spent
    _at(db, "0002", "downgrade")
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM subscribers")).scalar() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM deliveries")).scalar() == 2
    db.dispose()


def test_0007_downgrade_keeps_deliveries_and_autoincrement(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Going back to 0006 drops only ``active_since``: the deliveries naming subscribers stay
    (a table rebuild would cascade them away) and ids are still never reused."""
    db = Database(f"sqlite:///{tmp_path}/back.db")
    _at(db, "0007")
    now = "2026-11-30 07:00:00.000000"
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (id, email, name, status, cadence, topics, timezone,"
                " send_hour, created_at, updated_at) VALUES (1, 'ann@example.com', 'N', 'active',"
                " 'daily', '[]', 'UTC', 7, :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO deliveries (kind, subscriber_id, to_email, status, attempts,"
                " next_attempt_at, message_id, created_at, updated_at) VALUES ('confirm', 1,"
                " 'ann@example.com', 'queued', 0, :now, '<1@example.com>', :now, :now)"
            ),
            {"now": now},
        )
    _at(db, "0006", "downgrade")
    with db.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT subscriber_id FROM deliveries")).scalars().all() == [1]
        table = conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE name = 'subscribers'")
        ).scalar_one()
        assert "AUTOINCREMENT" in table
        assert "active_since" not in table
    db.dispose()


def _populate_0007(db: Database) -> None:
    """A store of the single-list schema: readers in every status, an edition, its mail."""
    now = "2026-11-30 07:00:00.000000"
    with db.engine.begin() as conn:
        for sid, email, status, topics, last in (
            (1, "ann@example.com", "active", '["World"]', now),
            (2, "bob@example.com", "pending", "[]", None),
            (3, "cy@example.com", "unsubscribed", "[]", None),
            (4, "di@example.com", "bounced", '["Sport", "Tech"]', now),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO subscribers (id, email, name, status, cadence, topics, timezone,"
                    " send_hour, created_at, updated_at, consent_at, consent_ip, consent_source,"
                    " last_digest_at) VALUES (:id, :email, 'N', :status, 'weekly', :topics,"
                    " 'Asia/Tokyo', 6, :now, :now, :now, '198.51.100.7', 'form', :last)"
                ),
                {
                    "id": sid,
                    "email": email,
                    "status": status,
                    "topics": topics,
                    "now": now,
                    "last": last,
                },
            )
        conn.execute(
            sa.text(
                "INSERT INTO editions (id, key, cadence, created_at, edition_at, is_test, subject,"
                " web_html, post_ids, recipients, skipped) VALUES (1, 'weekly:2026-11-30T07Z',"
                " 'weekly', :now, :now, false, 'S', '', '[]', 2, 0)"
            ),
            {"now": now},
        )
        for did, sid, kind, period in ((1, 1, "digest", "weekly:2026-W49"), (2, 4, "digest",
                                       "weekly:2026-W49"), (3, 2, "confirm", None)):  # fmt: skip
            conn.execute(
                sa.text(
                    "INSERT INTO deliveries (id, kind, edition_id, subscriber_id, period_key,"
                    " to_email, status, attempts, next_attempt_at, message_id, created_at,"
                    " updated_at) VALUES (:id, :kind, :ed, :sid, :period, 'x@example.com',"
                    " 'sent', 1, :now, :mid, :now, :now)"
                ),
                {
                    "id": did,
                    "kind": kind,
                    "ed": 1 if period else None,
                    "sid": sid,
                    "period": period,
                    "now": now,
                    "mid": f"<{did}@example.com>",
                },
            )


def test_0008_moves_the_single_list_into_newsletter_one(db: Database) -> None:
    """Every reader's status, cadence, topics, consent and history move into a subscription
    of newsletter 1; ids, addresses and Message-IDs stay; keys gain the newsletter."""
    _at(db, "0007", "downgrade")
    _populate_0007(db)
    db.upgrade()
    assert db.current_revision() == db.head_revision()
    with db.engine.begin() as conn:
        people = conn.execute(sa.text("SELECT id, email, timezone, send_hour FROM subscribers"
                                      " ORDER BY id")).all()  # fmt: skip
        assert [tuple(p) for p in people] == [
            (1, "ann@example.com", "Asia/Tokyo", 6),
            (2, "bob@example.com", "Asia/Tokyo", 6),
            (3, "cy@example.com", "Asia/Tokyo", 6),
            (4, "di@example.com", "Asia/Tokyo", 6),
        ]
        subs = conn.execute(
            sa.text(
                "SELECT subscriber_id, newsletter_id, status, cadence, topics, consent_ip,"
                " consent_source, last_digest_at IS NOT NULL FROM subscriptions"
                " ORDER BY subscriber_id"
            )
        ).all()
        assert [
            (s[0], s[1], s[2], s[3], json.loads(s[4]) if isinstance(s[4], str) else s[4])
            for s in subs
        ] == [
            (1, 1, "active", "weekly", ["World"]),
            (2, 1, "pending", "weekly", []),
            (3, 1, "unsubscribed", "weekly", []),
            (4, 1, "bounced", "weekly", ["Sport", "Tech"]),
        ]
        assert {(s[5], s[6]) for s in subs} == {("198.51.100.7", "form")}
        assert [bool(s[7]) for s in subs] == [True, False, False, True]
        name = conn.execute(sa.text("SELECT id, name FROM newsletters")).all()
        assert [tuple(n) for n in name] == [(1, "digest")]
        keys = conn.execute(sa.text("SELECT key, newsletter_id FROM editions")).all()
        assert [tuple(k) for k in keys] == [("1/weekly:2026-11-30T07Z", 1)]
        rows = conn.execute(
            sa.text("SELECT id, period_key, message_id FROM deliveries ORDER BY id")
        ).all()
        assert [tuple(r) for r in rows] == [
            (1, "1/weekly:2026-W49", "<1@example.com>"),
            (2, "1/weekly:2026-W49", "<2@example.com>"),
            (3, None, "<3@example.com>"),
        ]
    assert _diff(db) == []
    # Back down while there is one newsletter: the old rows come back as they were.
    _at(db, "0007", "downgrade")
    with db.engine.begin() as conn:
        back = conn.execute(
            sa.text("SELECT id, status, cadence, consent_ip FROM subscribers ORDER BY id")
        ).all()
        assert [tuple(b) for b in back] == [
            (1, "active", "weekly", "198.51.100.7"),
            (2, "pending", "weekly", "198.51.100.7"),
            (3, "unsubscribed", "weekly", "198.51.100.7"),
            (4, "bounced", "weekly", "198.51.100.7"),
        ]
        assert conn.execute(sa.text("SELECT key FROM editions")).scalar_one() == (
            "weekly:2026-11-30T07Z"
        )
        periods = conn.execute(sa.text("SELECT period_key FROM deliveries ORDER BY id")).scalars()
        assert list(periods) == ["weekly:2026-W49", "weekly:2026-W49", None]
    db.upgrade()


def test_0008_downgrade_is_refused_once_a_second_newsletter_exists(db: Database) -> None:
    """The old schema has one list: a second newsletter's readers would be lost."""
    with db.transaction() as session:
        newsletters.add(session, "sport", name="Sports Weekly")
    _at(db, "0008", "downgrade")
    with pytest.raises(Exception, match="2 newsletters"):
        _at(db, "0007", "downgrade")
    assert db.current_revision() == "0008"
    db.upgrade()
