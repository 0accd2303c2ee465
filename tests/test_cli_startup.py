"""The ``digest`` command starts without what it does not use: ``--help`` loads neither the
store nor the settings, and a store command loads no migration, web, scheduler or SMTP code.
(How long each takes is measured by ``bench/cli_startup.py``, not here.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from digest.cli import COMMANDS, SHORT_HELP, cli
from digest.db import Database, alembic_config, shipped_head

# Runs the real entry point and reports, at exit, every module the run imported.
_PROBE = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print('MODULES', json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
    "from digest.cli import main\n"
    "main(sys.argv[1:])\n"
)


def _imported(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, full: bool = False
) -> set[str]:
    """The modules a run of ``digest ARGS`` imported: top-level packages, or every module."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    names = json.loads(line.removeprefix("MODULES "))
    return set(names) if full else {name.split(".")[0] for name in names}


def test_help_imports_neither_the_store_nor_the_settings() -> None:
    loaded = _imported("--help")
    heavy = {"sqlalchemy", "sqlmodel", "alembic", "fastapi", "pydantic", "pydantic_settings"}
    assert loaded & heavy == set()
    assert loaded & {"apscheduler", "aiosmtplib", "rich", "jinja2", "uvicorn"} == set()


def test_a_store_command_imports_no_migration_web_scheduler_or_smtp_code(
    db: Database, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env |= {"DIGEST_DATABASE_URL": db.url, "DIGEST_SECRET_KEY": "k" * 40}
    loaded = _imported("subscribers", "list", env=env, cwd=tmp_path)
    assert "sqlalchemy" in loaded
    unused = {"alembic", "mako", "fastapi", "starlette", "apscheduler", "aiosmtplib", "rich"}
    assert loaded & unused == set()


def test_showing_a_subscriber_on_sqlite_loads_no_postgresql_dialect_nor_email_validator(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """SQLAlchemy's PostgreSQL dialect (every driver's module) and email-validator's patterns
    are a noticeable part of a command's start-up; a SQLite store needs the first never, and
    finding a stored address (any case) needs no validation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env |= {"DIGEST_DATABASE_URL": sqlite_db.url, "DIGEST_SECRET_KEY": "k" * 40}
    _imported("subscribers", "add", "ann@example.com", env=env, cwd=tmp_path)
    loaded = _imported("subscribers", "show", "Ann@Example.com", env=env, cwd=tmp_path, full=True)
    assert "sqlalchemy.dialects.sqlite" in loaded
    assert not {m for m in loaded if m.startswith("sqlalchemy.dialects.postgresql")}
    assert "psycopg" not in loaded
    assert "email_validator" not in loaded


def test_the_listed_help_is_each_commands_own() -> None:
    """``SHORT_HELP`` lets --help list the commands without importing them; it must say what
    the commands themselves say."""
    assert set(SHORT_HELP) == set(COMMANDS)
    ctx = click.Context(cli, info_name="digest")
    quick, full = click.HelpFormatter(), click.HelpFormatter()
    cli.format_commands(ctx, quick)
    click.Group.format_commands(cli, ctx, full)  # click's own: imports every command
    assert quick.getvalue() == full.getvalue()


def test_the_shipped_head_read_as_text_is_alembics() -> None:
    """Commands compare the store with the newest migration read from the files as text, not
    through Alembic; both must name the same revision."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert shipped_head() == scripts.get_current_head()
