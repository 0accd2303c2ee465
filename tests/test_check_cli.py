"""``digest check`` end to end: DNS from a server on loopback, the site over https, an SMTP
relay with STARTTLS and AUTH, the store; exit 0 when every check passes, 1 on any ✗ and when
only the store's part could not run, --json."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.db import Database
from tests.support.cli import run
from tests.support.dns_server import DnsServer, Zone, dns_server, silent_dns_server  # noqa: F401
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.support.tls import self_signed, server_context
from tests.test_check_smtp import authenticator

GOOD: Zone = {
    "brief.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all"), ("MX", (10, "mx.brief.example"))],
    "_dmarc.brief.example": [("TXT", "v=DMARC1; p=reject")],
}


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_site(certs: tuple[Path, Path]) -> Iterator[str]:
    """https://127.0.0.1:PORT answering /healthz, with the test certificate."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.socket = server_context(*certs).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def relay(certs: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = start_server(
        RecordingHandler(),
        tls_context=server_context(*certs),
        require_starttls=True,
        authenticator=authenticator,
    )
    yield server
    server.stop()


@pytest.fixture
def good_env(
    cli_env: Database,
    monkeypatch: pytest.MonkeyPatch,
    certs: tuple[Path, Path],
    https_site: str,
    relay: SmtpServer,
    dns_server: DnsServer,  # noqa: F811
) -> DnsServer:
    """Every setting right for every check; the test certificate trusted as the system's."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs[0]))
    monkeypatch.setenv("DIGEST_FROM", "The Daily Brief <news@brief.example>")
    monkeypatch.setenv("DIGEST_BASE_URL", https_site)
    monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://u%40x:s3cret@127.0.0.1:{relay.port}")
    dns_server.zone = {name: list(records) for name, records in GOOD.items()}
    return dns_server


def test_every_check_passing_exits_0_and_sends_nothing(
    good_env: DnsServer, relay: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "check", "--resolver", good_env.address)
    assert r.code == 0, r.out
    lines = r.out.splitlines()
    for name in ("SPF", "DMARC", "MX", "base URL https", "base URL answers", "From domain",
                 "SMTP relay", "STARTTLS", "SMTP AUTH", "envelope sender", "complaint rate",
                 "hard bounces"):  # fmt: skip
        assert any(line.startswith(f"✓ {name}: ") for line in lines), (name, r.out)
    assert "- DKIM: digest does not sign" in r.out
    assert "- sample digest: no digest to look at" in r.out
    assert "✗" not in r.out and "fix:" not in r.out
    assert lines[-1] == "12 passed, 0 warnings, 0 failed, 2 not checked"
    assert relay.handler.received == []


def test_json_lists_every_check_with_its_fields_and_a_summary(
    good_env: DnsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "check", "--json", "--resolver", good_env.address)
    assert r.code == 0, r.out
    data = json.loads(r.out)
    assert data["summary"] == {
        "ok": 12,
        "warn": 0,
        "fail": 0,
        "skip": 2,
        "passed": True,
        "store_checked": True,
    }
    for check in data["checks"]:
        assert set(check) == {"name", "ok", "level", "detail", "fix"}
        assert check["ok"] is True and check["level"] in ("ok", "skip")


def test_one_failing_check_exits_1_and_says_how_to_fix_it(
    good_env: DnsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    del good_env.zone["_dmarc.brief.example"]
    r = run(capsys, "check", "--resolver", good_env.address)
    assert r.code == 1, r.out
    at = r.out.splitlines().index(
        "✗ DMARC: no DMARC record at _dmarc.brief.example: "
        "Gmail and Yahoo refuse bulk mail without one"
    )
    assert r.out.splitlines()[at + 1].startswith("    fix: publish a TXT record at _dmarc.")
    r = run(capsys, "check", "--json", "--resolver", good_env.address)
    assert r.code == 1
    data = json.loads(r.out)
    (dmarc,) = [c for c in data["checks"] if c["name"] == "DMARC"]
    assert dmarc["ok"] is False and dmarc["level"] == "fail" and dmarc["fix"]
    assert data["summary"]["passed"] is False and data["summary"]["fail"] == 1


def test_a_warning_alone_still_exits_0(
    good_env: DnsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    good_env.zone["_dmarc.brief.example"] = [("TXT", "v=DMARC1; p=none")]
    r = run(capsys, "check", "--resolver", good_env.address)
    assert r.code == 0, r.out
    assert "! DMARC: _dmarc.brief.example: p=none" in r.out


def test_a_resolver_that_never_answers_is_a_timeout_and_exits_1(
    cli_env: Database,
    silent_dns_server: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIGEST_FROM", "The Daily Brief <news@brief.example>")
    r = run(capsys, "check", "--resolver", silent_dns_server, "--dns-timeout", "0.5")
    assert r.code == 1
    assert "✗ SPF: DNS timeout: no answer for brief.example TXT within 0.5 s" in r.out
    assert "no SPF record" not in r.out


def test_bad_input_is_one_line_and_a_missing_store_is_skipped_with_exit_1(
    make_settings,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    silent_dns_server: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    make_settings()
    r = run(capsys, "check", "--resolver", "dns.example:53")
    assert r.code == 65 and r.err.strip() == "error: --resolver: 'dns.example' is not an IP address"
    monkeypatch.setenv("DIGEST_FROM", "not an address")
    r = run(capsys, "check")
    assert r.code == 78 and len(r.err.strip().splitlines()) == 1 and "DIGEST_FROM" in r.err
    monkeypatch.setenv("DIGEST_FROM", "Me <me@gmail.com>")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    r = run(capsys, "check", "--resolver", silent_dns_server, "--dns-timeout", "0.2")
    assert r.code == 1
    assert "✗ From domain: DIGEST_FROM is at gmail.com, a free-mail provider" in r.out
    # A failed check comes first: exit 1, and the store's part is shown as not checked.
    assert f"- store: not checked: no store at {tmp_path / 'var' / 'digest.db'}" in r.out
    assert "    fix: run digest db upgrade" in r.out
    assert not (tmp_path / "var" / "digest.db").exists()


def test_with_no_store_the_other_checks_run_and_the_exit_is_1(
    good_env: DnsServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere" / "digest.db"
    monkeypatch.setenv("DIGEST_DATABASE_URL", f"sqlite:///{missing}")
    r = run(capsys, "check", "--resolver", good_env.address)
    assert r.code == 1, r.out
    assert r.err.strip() == "error: no store: the checks that need one were skipped"
    assert "✓ SPF: " in r.out and "✓ SMTP relay: " in r.out and "✗" not in r.out
    assert f"- store: not checked: no store at {missing}" in r.out
    r = run(capsys, "check", "--json", "--resolver", good_env.address)
    assert r.code == 1
    summary = json.loads(r.out)["summary"]
    assert summary["passed"] is True and summary["store_checked"] is False
    assert not missing.exists()
