"""``digest settings``: every setting by name with its value and help, secrets hidden, no store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.config import Settings, setting_name
from tests.support.cli import run

SECRETS = {
    "DIGEST_SECRET_KEY": "key-that-must-not-show-0123456789abcdef",
    "DIGEST_ADMIN_TOKEN": "admin-token-that-must-not-show",
    "DIGEST_METRICS_TOKEN": "metrics-token-that-must-not-show",
    "DIGEST_SMTP_URL": "smtp://mailer:smtp-password-not-shown@mail.example:587",
    "DIGEST_DATABASE_URL": "postgresql+psycopg://digest:db-password-not-shown@127.0.0.1:1/digest",
}
EVERY_NAME = [setting_name(info.alias or field) for field, info in Settings.model_fields.items()]


@pytest.fixture
def clean_env(make_settings) -> Path:  # type: ignore[no-untyped-def]
    make_settings()  # clears DIGEST_* and moves into a temporary folder
    return Path.cwd()


def test_every_setting_with_its_value_and_help(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SITE_NAME", "The Daily Brief")
    monkeypatch.setenv("DIGEST_FEEDS", "https://a.example/feed, https://b.example/rss")
    result = run(capsys, "settings")
    assert result.code == 0, result.err
    names = [line.split("=", 1)[0] for line in result.out.splitlines() if line[:1] != " "]
    assert names == EVERY_NAME
    assert "DIGEST_TRUSTED_PROXIES" in names and len(names) == len(Settings.model_fields)
    assert "DIGEST_SITE_NAME=The Daily Brief\n    the publication's name" in result.out
    assert "DIGEST_FEEDS=https://a.example/feed,https://b.example/rss\n" in result.out
    assert "DIGEST_SEND_HOUR=7\n    default local hour (0-23)" in result.out
    assert "    default: digest\n" in result.out  # shown where the value is not the default


def test_json_for_programs(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_CONNECTIONS", "4")
    monkeypatch.setenv("DIGEST_BLOCKED_DOMAINS", "spam.example")
    result = run(capsys, "settings", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [item["name"] for item in data] == EVERY_NAME
    assert all(set(item) == {"name", "value", "default", "help"} for item in data)
    assert all(item["help"] for item in data)
    by_name = {item["name"]: item for item in data}
    assert by_name["DIGEST_SMTP_CONNECTIONS"] == {
        "name": "DIGEST_SMTP_CONNECTIONS",
        "value": 4,
        "default": 8,
        "help": "parallel SMTP connections per delivery worker",
    }
    assert by_name["DIGEST_BLOCKED_DOMAINS"]["value"] == ["spam.example"]
    assert by_name["DIGEST_FEATURED_CATEGORIES"]["default"] == ["Featured", "Don't Miss"]
    assert by_name["DIGEST_ADMIN_TOKEN"]["value"] is None
    assert by_name["DIGEST_LOG_JSON"]["value"] is False
    assert by_name["DIGEST_VAR_DIR"]["value"] == "var"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_secrets_are_redacted(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    as_json: bool,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = run(capsys, "settings", *(["--json"] if as_json else []))
    assert result.code == 0, result.err
    for secret in [
        *(SECRETS[n] for n in ("DIGEST_SECRET_KEY", "DIGEST_ADMIN_TOKEN", "DIGEST_METRICS_TOKEN")),
        "smtp-password-not-shown",
        "db-password-not-shown",
    ]:
        assert secret not in result.out
    if as_json:
        values = {item["name"]: item["value"] for item in json.loads(result.out)}
        assert values["DIGEST_SECRET_KEY"] == values["DIGEST_ADMIN_TOKEN"] == "***"
        assert values["DIGEST_METRICS_TOKEN"] == "***"
        assert values["DIGEST_SMTP_URL"] == "smtp://mailer:***@mail.example:587"
        assert values["DIGEST_DATABASE_URL"] == (
            "postgresql+psycopg://digest:***@127.0.0.1:1/digest"
        )
    else:
        assert "DIGEST_ADMIN_TOKEN=***\n" in result.out


def test_needs_no_store_and_makes_no_key(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = clean_env / "no" / "such" / "folder"
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{missing / 'digest.db'}")
    result = run(capsys, "settings")
    assert result.code == 0, result.err
    assert f"DIGEST_DATABASE_URL=sqlite:///{missing / 'digest.db'}\n" in result.out
    assert "DIGEST_SECRET_KEY=(unset)\n" in result.out
    assert not (clean_env / "no").exists()
    assert list(clean_env.iterdir()) == []  # no var/, no secret.key, no database


def test_a_key_made_before_shows_as_set(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = clean_env / "var" / "secret.key"
    key.parent.mkdir()
    key.write_text("k" * 48, encoding="utf-8")
    result = run(capsys, "settings", "--json")
    values = {item["name"]: item["value"] for item in json.loads(result.out)}
    assert values["DIGEST_SECRET_KEY"] == "***"
    assert "k" * 48 not in result.out


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIGEST_SEND_HOUR", "24"),
        ("DIGEST_FROM", "News Desk"),
        ("DIGEST_LIST_ID", "no dots here"),
        ("DIGEST_UNSUBSCRIBE_MAILTO", "not an address"),
        ("DIGEST_TRUSTED_PROXIES", "10.0.0.0/8,proxy.lan"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_78(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
) -> None:
    monkeypatch.setenv(name, value)
    result = run(capsys, "settings", "--json")
    assert result.code == 78
    assert result.out == ""
    assert result.err.startswith(f"error: {name}: ")
    assert len(result.err.strip().splitlines()) == 1
