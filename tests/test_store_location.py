"""Where the store is: commands refuse one that does not exist instead of making an empty one
wherever they run, the default store, key and outbox live under ``DIGEST_VAR_DIR``, and
``digest status`` and ``digest settings`` show the store's absolute path.

Through the real entry point, from a fresh working directory with no ``DIGEST_*`` set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support.cli import run

STORE_COMMANDS = [
    ["subscribers", "list"],
    ["subscribers", "add", "ann@example.com"],
    ["status"],
    ["send", "--dry-run"],
    ["preview"],
    ["posts", "list"],
    ["feeds", "list"],
    ["worker", "--until-empty"],
]


@pytest.fixture
def elsewhere(make_settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A fresh working directory, no DIGEST_* set: where a command is run by mistake."""
    make_settings()  # clears DIGEST_* and moves into tmp_path
    return tmp_path


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_a_command_refuses_a_missing_store_and_leaves_nothing_behind(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    r = run(capsys, *command)
    assert r.code == 69, (r.out, r.err)
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert f"no store at {elsewhere / 'var' / 'digest.db'}" in r.err
    assert "digest db upgrade" in r.err
    assert list(elsewhere.iterdir()) == []  # no var/, no digest.db, no secret.key


def test_help_and_settings_need_no_store(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["--help"], ["settings"], ["settings", "--json"], ["subscribers", "--help"]):
        r = run(capsys, *command)
        assert r.code == 0, (command, r.err)
    assert list(elsewhere.iterdir()) == []


def test_db_upgrade_makes_the_store_then_commands_use_it(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "db", "upgrade")
    assert r.code == 0 and f"store: {elsewhere / 'var' / 'digest.db'}" in r.out
    assert (elsewhere / "var" / "secret.key").exists()
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    status = run(capsys, "status")
    assert status.code == 0 and status.out.startswith(f"store: {elsewhere / 'var' / 'digest.db'}")
    assert json.loads(run(capsys, "status", "--json").out)["store"] == str(
        elsewhere / "var" / "digest.db"
    )
    shown = run(capsys, "settings").out
    assert "DIGEST_DATABASE_URL=sqlite:///var/digest.db\n" in shown
    assert f"    in use: {elsewhere / 'var' / 'digest.db'}\n" in shown


def test_the_default_store_key_and_outbox_live_under_var_dir(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = elsewhere / "srv" / "digest"
    work = elsewhere / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("DIGEST_VAR_DIR", str(home))
    assert run(capsys, "db", "upgrade").code == 0
    assert sorted(p.name for p in home.iterdir()) == ["digest.db", "secret.key"]
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    added = run(capsys, "posts", "add", "--title", "News", "--url", "https://news.example/1")
    assert added.code == 0, added.err
    sent = run(capsys, "send")
    assert sent.code == 0 and "1 sent" in sent.out, sent.err
    assert len(list((home / "outbox").glob("*.eml"))) == 1
    assert run(capsys, "status").out.startswith(f"store: {home / 'digest.db'}\n")
    assert list(work.iterdir()) == []  # nothing in the folder the commands ran from


@pytest.mark.postgres
def test_a_postgresql_database_without_our_tables_is_refused_until_db_upgrade(
    elsewhere: Path,
    pg_empty_database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", pg_empty_database_url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    r = run(capsys, "subscribers", "list")
    assert r.code == 69 and "digest db upgrade" in r.err
    assert make_url(pg_empty_database_url).database in r.err
    engine = sa.create_engine(pg_empty_database_url, poolclass=sa.pool.NullPool)
    assert sa.inspect(engine).get_table_names() == []  # refused, not built
    assert run(capsys, "db", "upgrade").code == 0
    assert "subscribers" in sa.inspect(engine).get_table_names()
    engine.dispose()
    assert run(capsys, "subscribers", "list").code == 0
