"""The ``digest subscribers`` and ``digest db`` commands, driven through the real entry point."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from digest.db import Database
from tests.support.cli import run

DIGEST = (sys.executable, "-c", "from digest.cli import main; main()")


def test_add_list_show_remove(cli_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(
        capsys,
        "subscribers",
        "add",
        "Ann@Example.COM",
        "--name",
        "Ann",
        "--topics",
        "World,Tech",
        "--timezone",
        "Europe/Paris",
        "--send-hour",
        "6",
        "--confirmed",
    )
    assert r.code == 0 and r.out.startswith("ann@example.com: active")
    r = run(capsys, "subscribers", "list", "--json")
    data = json.loads(r.out)
    assert [(d["email"], d["topics"], d["timezone"], d["send_hour"]) for d in data] == [
        ("ann@example.com", ["World", "Tech"], "Europe/Paris", 6)
    ]
    assert "consent_at" in run(capsys, "subscribers", "show", "ann@example.com").out
    r = run(capsys, "subscribers", "remove", "ANN@example.com")
    assert (r.code, r.out.strip()) == (0, "ann@example.com: unsubscribed")
    assert run(capsys, "subscribers", "list", "--status", "active").out.strip() == "no subscribers"


def test_no_tracking_keeps_a_readers_clicks_uncounted(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "subscribers", "add", "ann@example.com", "--no-tracking").code == 0
    shown = json.loads(run(capsys, "subscribers", "list", "--json").out)
    assert [d["tracking_opt_out"] for d in shown] == [True]
    # Adding again without the option leaves it; --tracking counts them again.
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    assert json.loads(run(capsys, "subscribers", "list", "--json").out)[0]["tracking_opt_out"]
    assert run(capsys, "subscribers", "add", "ann@example.com", "--tracking").code == 0
    assert not json.loads(run(capsys, "subscribers", "list", "--json").out)[0]["tracking_opt_out"]


def test_show_finds_any_spelling_and_refuses_what_is_not_an_address(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stored address is found as typed (trimmed, any case) before it is validated; what
    no row matches is validated as before, so a wrong address still says why."""
    assert run(capsys, "subscribers", "add", "ann@bücher.example", "--name", "Ann").code == 0
    assert run(capsys, "subscribers", "add", "bob@example.com").code == 0
    for typed in (" BOB@Example.com ", "bob@EXAMPLE.COM", "ann@BÜCHER.example"):
        r = run(capsys, "subscribers", "show", typed, "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["email"] in {"bob@example.com", "ann@bücher.example"}
    r = run(capsys, "subscribers", "show", "Nobody@Example.COM")
    assert (r.code, r.err.strip()) == (66, "error: no subscriber nobody@example.com")
    r = run(capsys, "subscribers", "show", "bob@example")
    assert r.code == 65 and r.err.startswith("error: that is not a valid email address (")
    r = run(capsys, "subscribers", "show", "bob@example.com\n")
    assert r.code == 0  # trimmed, as before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("subscribers", "add", "not-an-address"), 65, "error: that is not a valid email address"),
        (
            ("subscribers", "add", "a@example.com", "--timezone", "Nowhere/City"),
            65,
            "unknown timezone",
        ),
        (
            ("subscribers", "show", "nobody@example.com"),
            66,
            "error: no subscriber nobody@example.com",
        ),
        (("subscribers", "remove", "nobody@example.com"), 66, "no subscriber"),
        (("subscribers", "erase", "nobody@example.com", "--yes"), 66, "no subscriber"),
        (("subscribers", "import", "missing.csv"), 66, "error: no such file: missing.csv"),
        (("subscribers", "add", "a@example.com", "--send-hour", "24"), 65, "0-23"),
    ],
)
def test_bad_input_gives_one_line_and_an_exit_code(
    cli_env: Database,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    r = run(capsys, *args)
    assert r.code == code
    assert message in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert json.loads(run(capsys, "subscribers", "list", "--json").out) == []


def test_import_export_erase(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "email,name,cadence\nb@example.com,Bo,weekly\nbad,X,daily\na@example.com,Al,\n",
        encoding="utf-8",
    )
    r = run(capsys, "subscribers", "import", str(src), "--status", "active")
    assert r.code == 3  # partial: two imported, one rejected
    assert "line 3: bad:" in r.err and "2 added" in r.out
    again = run(capsys, "subscribers", "import", str(src), "--status", "active")
    assert "0 added, 0 updated, 2 unchanged" in again.out
    out = tmp_path / "out.csv"
    assert run(capsys, "subscribers", "export", str(out)).code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("email,name,status,cadence,topics,timezone,send_hour")
    assert [line.split(",")[0] for line in lines[1:]] == ["a@example.com", "b@example.com"]
    assert run(capsys, "subscribers", "erase", "a@example.com", "--yes").code == 0
    r = run(capsys, "subscribers", "import", str(out))
    assert "1 suppressed" in r.out and r.code == 0
    assert [d["email"] for d in json.loads(run(capsys, "subscribers", "list", "--json").out)] == [
        "b@example.com"
    ]


def test_empty_and_header_only_files(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    (tmp_path / "header.csv").write_text("email,name\n", encoding="utf-8")
    r = run(capsys, "subscribers", "import", str(tmp_path / "empty.csv"))
    assert r.code == 66 and "empty" in r.err
    r = run(capsys, "subscribers", "import", str(tmp_path / "header.csv"))
    assert r.code == 66 and "no rows" in r.err


def test_unreachable_database_and_bad_settings(
    make_settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    r = run(capsys, "subscribers", "list")
    assert r.code == 69 and r.err.startswith("error: cannot use the database")
    for name, value, expected in [
        ("DIGEST_DATABASE_URL", "mysql://x/y", "DIGEST_DATABASE_URL:"),
        ("DIGEST_SMTP_URL", "http://mail", "DIGEST_SMTP_URL:"),
        ("DIGEST_TIMEZONE", "Mars/Base", "DIGEST_TIMEZONE: unknown timezone"),
        ("DIGEST_SEND_HOUR", "25", "DIGEST_SEND_HOUR:"),
        ("DIGEST_SEND_HOUR", "seven", "DIGEST_SEND_HOUR:"),
    ]:
        monkeypatch.setenv(name, value)
        r = run(capsys, "subscribers", "list")
        assert r.code == 78 and r.err.startswith(f"error: {expected}"), r.err
        assert len(r.err.strip().splitlines()) == 1
        monkeypatch.delenv(name)


def test_db_upgrade_builds_a_new_store(
    make_settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{tmp_path}/new/dir/digest.db")
    r = run(capsys, "db", "upgrade")
    assert r.code == 0 and "upgraded from empty" in r.out
    assert "up to date" in run(capsys, "db", "upgrade").out
    assert (tmp_path / "new" / "dir" / "digest.db").exists()


def test_erase_without_a_terminal_needs_yes(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """A script piping into erase must say --yes: nothing is erased on a guess."""
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    r = run(capsys, "subscribers", "erase", "ann@example.com")  # pytest's stdin: no terminal
    assert r.code == 64
    assert r.err.startswith("error: ") and "--yes" in r.err and "not a terminal" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert run(capsys, "subscribers", "show", "ann@example.com").code == 0  # still there
    assert run(capsys, "subscribers", "erase", "ann@example.com", "--yes").code == 0
    assert run(capsys, "subscribers", "show", "ann@example.com").code == 66


def test_erase_on_a_terminal_asks(cli_env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal (a real pty) erase asks; "n" keeps the person, "y" erases them."""
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    for answer, code, kept in (("n", 130, True), ("y", 0, False)):
        primary, secondary = pty.openpty()
        proc = subprocess.Popen(
            [*DIGEST, "subscribers", "erase", "ann@example.com"],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        os.close(secondary)
        os.write(primary, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=120)
        os.close(primary)
        assert proc.returncode == code, (out, err)
        assert b"Erase every record of ann@example.com?" in out
        assert (run(capsys, "subscribers", "show", "ann@example.com").code == 0) is kept
