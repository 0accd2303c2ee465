"""Settings: defaults of the contract, validation with one line naming the setting, the secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from digest.config import Settings, load_settings, setting_name
from digest.errors import SettingsError
from tests.support.cli import run as run_digest


@pytest.fixture
def clean_env(make_settings) -> None:  # type: ignore[no-untyped-def]
    make_settings()  # clears DIGEST_* and chdirs into a temporary folder


def test_contract_defaults(clean_env: None) -> None:
    s = Settings()
    assert s.database_url == "sqlite:///var/digest.db"
    assert s.smtp_url == "file:var/outbox" and s.file_outbox == Path("var/outbox")
    assert (s.smtp_connections, s.send_rate, s.send_hour, s.timezone) == (8, 0, 7, "UTC")
    assert s.base_url == "http://127.0.0.1:8000" and s.from_ == "digest <digest@localhost>"
    assert s.site_name == "digest" and s.feeds == [] and s.admin_token is None


def test_environment_and_dotenv(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("DIGEST_SITE_NAME=From Dotenv\nDIGEST_SEND_HOUR=9\n", encoding="utf-8")
    monkeypatch.setenv("DIGEST_SEND_HOUR", "6")
    monkeypatch.setenv("DIGEST_FEEDS", "https://a.example/feed, https://b.example/rss")
    monkeypatch.setenv("DIGEST_FROM", "The Daily Brief <news@example.com>")
    monkeypatch.setenv("DIGEST_SMTP_URL", "file:///tmp/x y")
    s = load_settings()
    assert s.site_name == "From Dotenv" and s.send_hour == 6  # the environment wins
    assert s.feeds == ["https://a.example/feed", "https://b.example/rss"]
    assert s.from_ == "The Daily Brief <news@example.com>"
    assert s.file_outbox == Path("/tmp/x y")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DIGEST_DATABASE_URL", "not a url", "DIGEST_DATABASE_URL: not a database URL"),
        (
            "DIGEST_DATABASE_URL",
            "postgresql+psycopg2://u@h/db",
            "DIGEST_DATABASE_URL: PostgreSQL URLs must use",
        ),
        ("DIGEST_SMTP_URL", "smtp://", "DIGEST_SMTP_URL: no host"),
        ("DIGEST_SMTP_URL", "smtp://mail:notaport", "DIGEST_SMTP_URL: bad port"),
        ("DIGEST_SMTP_URL", "ftp://mail", "DIGEST_SMTP_URL: use smtp://"),
        ("DIGEST_TIMEZONE", "Europe/Atlantis", "DIGEST_TIMEZONE: unknown timezone"),
        ("DIGEST_TIMEZONE", "../../etc/passwd", "DIGEST_TIMEZONE: unknown timezone"),
        ("DIGEST_TIMEZONE", "Europe", "DIGEST_TIMEZONE: unknown timezone"),
        ("DIGEST_SEND_HOUR", "-1", "DIGEST_SEND_HOUR: an hour is 0 to 23"),
        ("DIGEST_BASE_URL", "javascript:alert(1)", "DIGEST_BASE_URL: must be an http(s) URL"),
        ("DIGEST_SMTP_CONNECTIONS", "0", "DIGEST_SMTP_CONNECTIONS:"),
        ("DIGEST_FROM", "a\nBcc: x@y", "DIGEST_FROM: must be one line"),
        ("DIGEST_RETURN_PATH", "Bounces <b@x.example>", "DIGEST_RETURN_PATH: must be one plain"),
        ("DIGEST_RETURN_PATH", "b@x.example\r\nRCPT TO:<v@y>", "DIGEST_RETURN_PATH: must be"),
        ("DIGEST_FROM", "News Desk", "DIGEST_FROM: no valid address in 'News Desk'"),
        ("DIGEST_FROM", "News <@example.com>", "DIGEST_FROM: no valid address"),
        ("DIGEST_LIST_ID", "no dots here", "DIGEST_LIST_ID: not like digest.example.com"),
        # Unset, the List-Id is made from the From domain, which must make a valid one.
        ("DIGEST_FROM", "News <news@.example>", "DIGEST_LIST_ID: not like digest.example.com"),
        (
            "DIGEST_UNSUBSCRIBE_MAILTO",
            "not an address",
            "DIGEST_UNSUBSCRIBE_MAILTO: not an address: 'not an address'",
        ),
        (
            "DIGEST_TRUSTED_PROXIES",
            "10.0.0.0/8, proxy.lan",
            "DIGEST_TRUSTED_PROXIES: 'proxy.lan' is not an address or network",
        ),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith(says)
    assert "\n" not in str(info.value)


def test_secret_is_generated_once_and_kept_private(clean_env: None) -> None:
    first = load_settings().secret_key
    second = load_settings().secret_key
    assert first == second and first is not None and len(first) >= 48
    mode = Path("var/secret.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_configured_secret_wins(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "s" * 40)
    assert load_settings().secret == b"s" * 40
    assert not Path("var/secret.key").exists()


def _first_start(path: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    from digest.secret_key import stored_secret

    barrier.wait()
    results.put(stored_secret(Path(path)))


def test_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    """serve and worker started together on a new machine must sign links with one key."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for run in range(10):
        path = tmp_path / str(run) / "secret.key"
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [
            ctx.Process(target=_first_start, args=(str(path), barrier, results)) for _ in range(3)
        ]
        for p in procs:
            p.start()
        keys = {results.get(timeout=30) for _ in procs}
        for p in procs:
            p.join()
        assert keys == {path.read_text(encoding="utf-8")}
        assert [f.name for f in path.parent.iterdir()] == ["secret.key"]


def test_mail_settings_are_read_once_checked(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_FROM", "Le Quotidien <News@Straße.example>")
    monkeypatch.setenv("DIGEST_UNSUBSCRIBE_MAILTO", "mailto:leave@example.com")
    monkeypatch.setenv("DIGEST_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1, ::1")
    s = load_settings()
    assert s.from_domain == "xn--strae-oqa.example"
    assert s.list_id is None and s.list_identifier == "digest.xn--strae-oqa.example"
    assert s.unsubscribe_mailto == "leave@example.com"
    assert s.trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "::1"]
    monkeypatch.setenv("DIGEST_LIST_ID", " <news.example.com> ")
    assert load_settings().list_identifier == "news.example.com"


def test_the_readme_lists_every_setting() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `DIGEST_")]
    listed = [row.split("`")[1] for row in rows]
    assert listed == [
        setting_name(info.alias or field) for field, info in Settings.model_fields.items()
    ]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DIGEST_SECRET_KEY", "x", "DIGEST_SECRET_KEY: too short (1 characters); use at least 32"),
        ("DIGEST_SECRET_KEY", "k" * 31, "DIGEST_SECRET_KEY: too short (31 characters)"),
        ("DIGEST_SECRET_KEY", "", "DIGEST_SECRET_KEY: is empty; remove it to use the generated"),
        ("DIGEST_SECRET_KEY", "   ", "DIGEST_SECRET_KEY: is empty"),
        (
            "DIGEST_ADMIN_TOKEN",
            "a",
            "DIGEST_ADMIN_TOKEN: too short (1 characters); use at least 24",
        ),
        ("DIGEST_ADMIN_TOKEN", "t" * 23, "DIGEST_ADMIN_TOKEN: too short (23 characters)"),
        ("DIGEST_ADMIN_TOKEN", "", "DIGEST_ADMIN_TOKEN: is empty; remove it to turn the admin API"),
        ("DIGEST_ADMIN_TOKEN", " " + "t" * 30, "DIGEST_ADMIN_TOKEN: starts or ends with a space"),
        ("DIGEST_METRICS_TOKEN", "scrape", "DIGEST_METRICS_TOKEN: too short (6 characters)"),
        ("DIGEST_METRICS_TOKEN", "", "DIGEST_METRICS_TOKEN: is empty"),
    ],
)
def test_weak_secrets_are_refused_at_start_up(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    """``DIGEST_SECRET_KEY=x`` once signed every link with a one-letter key, and
    ``DIGEST_ADMIN_TOKEN=a`` opened the admin API to a one-guess attacker."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value).startswith(says)
    assert "\n" not in str(info.value)
    if len(value.strip()) > 4:
        assert value.strip() not in str(info.value)  # a secret is never echoed


def test_strong_secrets_and_the_generated_key_are_accepted(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(load_settings().secret_key or "") >= 32  # the generated key file
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("DIGEST_ADMIN_TOKEN", "a" * 24)
    monkeypatch.setenv("DIGEST_METRICS_TOKEN", "m" * 24)
    s = load_settings()
    assert (s.secret_key, s.admin_token, s.metrics_token) == ("k" * 32, "a" * 24, "m" * 24)


@pytest.mark.parametrize(
    "name", ["DIGEST_SECRET_KEY", "DIGEST_ADMIN_TOKEN", "DIGEST_METRICS_TOKEN"]
)
def test_the_command_refuses_a_weak_secret_with_one_line_and_exit_78(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    monkeypatch.setenv(name, "short-secret")
    result = run_digest(capsys, "settings")
    assert result.code == 78
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert name in line and "too short" in line and "short-secret" not in line
