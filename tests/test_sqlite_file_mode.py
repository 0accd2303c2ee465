"""The SQLite store holds addresses and consent IPs: its file, -wal and -shm are the owner's
alone (0600) from their creation, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.db import Database
from tests.support.cli import run


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask of a default shell, under which files come out world-readable (0644)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(path: Path) -> dict[str, str]:
    return {
        p.name: oct(stat.S_IMODE(p.stat().st_mode))
        for p in sorted(path.parent.glob(path.name + "*"))
    }


def test_db_upgrade_and_writes_make_owner_only_files(
    make_settings, monkeypatch, capsys, open_umask, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    make_settings()  # clears DIGEST_* and moves into tmp_path
    path = tmp_path / "store" / "digest.db"
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    assert run(capsys, "db", "upgrade").code == 0
    assert _modes(path)["digest.db"] == "0o600"
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    db = Database(f"sqlite:///{path}")
    with db.engine.connect() as conn:  # an open connection keeps -wal and -shm in place
        conn.exec_driver_sql("UPDATE subscribers SET name = 'Ann'")
        conn.commit()
        modes = _modes(path)
        assert set(modes) == {"digest.db", "digest.db-shm", "digest.db-wal"}
        assert set(modes.values()) == {"0o600"}, modes
    db.dispose()


def test_an_existing_file_keeps_the_mode_its_owner_gave_it(tmp_path: Path, open_umask) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    assert oct(stat.S_IMODE(path.stat().st_mode)) == "0o640"
