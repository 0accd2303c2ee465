"""Desk accounts: the password policy, and ``digest users`` through the real entry point, on
SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from hypothesis import Phase, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from digest import desk_accounts, desk_sessions
from digest.clock import utcnow
from digest.db import Database
from digest.errors import WeakPassword
from digest.passwords import (
    MIN_LENGTH,
    check_password,
    common_passwords,
    hash_password,
    verify_password,
)
from tests.support.cli import Result, run

GOOD = "violet kettle marching"
FEW = hyp_settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate])

# -- the password policy ---------------------------------------------------------------------


@hyp_settings(max_examples=200, deadline=None)
@given(st.text(max_size=MIN_LENGTH - 1))
def test_any_password_shorter_than_twelve_is_refused(password: str) -> None:
    with pytest.raises(WeakPassword, match="at least 12"):
        check_password(password, "ann@example.com")


def _any_case(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(word, flips, strict=True))
    )


LONG_COMMON = sorted(p for p in common_passwords() if len(p) >= MIN_LENGTH)


@hyp_settings(max_examples=100, deadline=None)
@given(st.sampled_from(LONG_COMMON).flatmap(_any_case))
def test_common_passwords_are_refused_in_any_case(password: str) -> None:
    assert LONG_COMMON, "the shipped list has long common passwords to test"
    with pytest.raises(WeakPassword, match="common"):
        check_password(password)


@hyp_settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(common_passwords())), st.sampled_from(["2024", "!", "123", "1."]))
def test_a_common_password_with_digits_tacked_on_is_refused(word: str, tail: str) -> None:
    password = (
        (word + tail).ljust(MIN_LENGTH, "1") if len(word + tail) < MIN_LENGTH else word + tail
    )
    with pytest.raises(WeakPassword):
        check_password(password)


_LETTERS = st.characters(min_codepoint=0x21, max_codepoint=0x2FF, blacklist_categories=("Cs",))


@FEW
@given(
    st.text(_LETTERS, min_size=MIN_LENGTH, max_size=40).filter(lambda p: len(set(p)) >= 4),
    st.text(_LETTERS, min_size=1, max_size=40),
)
def test_an_accepted_password_verifies_and_any_other_does_not(password: str, other: str) -> None:
    try:
        check_password(password, "ann@example.com")
    except WeakPassword:
        return  # refused: a policy test above covers why
    stored = hash_password(password)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, password)
    if other != password:
        assert not verify_password(stored, other)


def test_the_password_may_not_be_the_address() -> None:
    with pytest.raises(WeakPassword, match="address"):
        check_password("annabelle-lee-2026", "annabelle@example.com")
    with pytest.raises(WeakPassword, match="few"):
        check_password("abababababababab")


def test_no_account_verifies_nothing() -> None:
    assert not verify_password(None, GOOD)


# -- digest users ----------------------------------------------------------------------------


def users(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str | None = None,
) -> Result:
    """``digest users ARGS``, with ``stdin`` as the piped standard input."""
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return run(capsys, "users", *args)


def one_line_error(r: Result) -> str:
    """The error of a failed command: non-zero, one line on stderr, no traceback."""
    assert r.code != 0, r.out
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err
    return lines[0]


def test_the_first_owner_comes_from_the_cli_and_the_password_keeps_its_spaces(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = users(capsys, monkeypatch, "list")
    assert listed.out.strip() == "no desk accounts yet: digest users add EMAIL --role owner"

    # Exactly one line ending goes: the trailing space typed is part of the password.
    r = users(
        capsys,
        monkeypatch,
        *("add", "Owner@Example.com", "--role", "owner", "--password-stdin"),
        stdin=GOOD + " \n",
    )
    assert (r.code, r.out.strip()) == (0, "added owner@example.com as owner"), r.err
    with cli_env.transaction() as session:
        assert desk_accounts.authenticate(session, "owner@example.com", GOOD + " ", utcnow())
        assert not desk_accounts.authenticate(session, "owner@example.com", GOOD, utcnow())

    r = users(capsys, monkeypatch, "list", "--json")
    rows = json.loads(r.out)
    assert [(u["email"], u["role"], u["totp"]) for u in rows] == [
        ("owner@example.com", "owner", False)
    ]
    assert "owner@example.com  owner  last sign-in: " in users(capsys, monkeypatch, "list").out


def test_add_refuses_weak_passwords_duplicates_and_bad_input_in_one_line(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    add = ("add", "ed@example.com", "--role", "editor", "--password-stdin")
    assert "at least 12" in one_line_error(users(capsys, monkeypatch, *add, stdin="short\n"))
    common = users(capsys, monkeypatch, *add, stdin="PasswordPassword\n")
    assert "common" in one_line_error(common)
    two_lines = users(capsys, monkeypatch, *add, stdin=f"{GOOD}\nsecond line\n")
    assert "one line" in one_line_error(two_lines)
    assert users(capsys, monkeypatch, *add, stdin=GOOD + "\n").code == 0
    again = users(capsys, monkeypatch, *add, stdin=GOOD + "\n")
    assert "already" in one_line_error(again)
    bad = users(capsys, monkeypatch, "add", "not-an-address", "--role", "editor", stdin=GOOD)
    one_line_error(bad)
    # Nobody at a terminal and no --password-stdin: no prompt into the void.
    piped = users(capsys, monkeypatch, "add", "vi@example.com", "--role", "viewer", stdin="")
    assert "--password-stdin" in one_line_error(piped)
    emails = [u["email"] for u in json.loads(users(capsys, monkeypatch, "list", "--json").out)]
    assert emails == ["ed@example.com"]


def test_roles_change_but_the_last_owner_stays(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for email, role in [("own@example.com", "owner"), ("ed@example.com", "editor")]:
        r = users(capsys, monkeypatch, "add", email, "--role", role, "--password-stdin", stdin=GOOD)
        assert r.code == 0, r.err

    demoted = users(capsys, monkeypatch, "role", "own@example.com", "editor")
    assert "owner" in one_line_error(demoted)
    gone = users(capsys, monkeypatch, "remove", "own@example.com")
    assert "owner" in one_line_error(gone)

    r = users(capsys, monkeypatch, "role", "ED@example.com", "owner")
    assert (r.code, r.out.strip()) == (0, "ed@example.com is now owner"), r.err
    r = users(capsys, monkeypatch, "role", "own@example.com", "viewer")
    assert (r.code, r.out.strip()) == (0, "own@example.com is now viewer"), r.err
    roles = {
        u["email"]: u["role"] for u in json.loads(users(capsys, monkeypatch, "list", "--json").out)
    }
    assert roles == {"own@example.com": "viewer", "ed@example.com": "owner"}

    assert "no desk account" in one_line_error(
        users(capsys, monkeypatch, "role", "x@example.com", "owner")
    )
    bad_role = users(capsys, monkeypatch, "role", "ed@example.com", "admin")
    assert bad_role.code != 0 and "Traceback" not in bad_role.err


def test_passwd_ends_the_accounts_sessions_and_remove_deletes_it(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for email, role in [("own@example.com", "owner"), ("ed@example.com", "editor")]:
        users(capsys, monkeypatch, "add", email, "--role", role, "--password-stdin", stdin=GOOD)
    now = utcnow()
    with cli_env.transaction() as session:
        cookies = {
            email: desk_sessions.open_session(
                session,
                desk_accounts.get(session, email),
                now,
                lifetime=timedelta(hours=12),
                ip="192.0.2.1",
                user_agent="test",
            ).cookie
            for email in ("own@example.com", "ed@example.com")
        }

    new = "a different long passphrase"
    r = users(capsys, monkeypatch, "passwd", "ed@example.com", "--password-stdin", stdin=new + "\n")
    assert r.code == 0 and "its sessions have ended" in r.out, r.err
    idle = timedelta(hours=1)
    with cli_env.transaction() as session:
        assert desk_sessions.lookup(session, cookies["ed@example.com"], now, idle=idle) is None
        # Another account's session is not touched.
        assert desk_sessions.lookup(session, cookies["own@example.com"], now, idle=idle)
        assert desk_accounts.authenticate(session, "ed@example.com", new, now)
        assert not desk_accounts.authenticate(session, "ed@example.com", GOOD, now)

    weak = users(capsys, monkeypatch, "passwd", "ed@example.com", "--password-stdin", stdin="x\n")
    assert "at least 12" in one_line_error(weak)
    nobody = users(capsys, monkeypatch, "passwd", "no@example.com", "--password-stdin", stdin=new)
    assert "no desk account" in one_line_error(nobody)

    r = users(capsys, monkeypatch, "remove", "ed@example.com")
    assert (r.code, r.out.strip()) == (0, "removed ed@example.com"), r.err
    emails = [u["email"] for u in json.loads(users(capsys, monkeypatch, "list", "--json").out)]
    assert emails == ["own@example.com"]
    assert "no desk account" in one_line_error(
        users(capsys, monkeypatch, "remove", "ed@example.com")
    )
    # The last account may go, owner or not: the CLI can always make a new one.
    assert users(capsys, monkeypatch, "remove", "own@example.com").code == 0
