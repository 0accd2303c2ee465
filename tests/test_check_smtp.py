"""``digest check``'s SMTP checks against aiosmtpd: with and without STARTTLS and AUTH, a
refused sender, an unreachable relay; nothing is ever sent."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest.config import Settings
from digest.deliverability.report import Finding, Level
from digest.deliverability.smtp_check import smtp_findings
from tests.support.smtp_server import RecordingHandler, SmtpServer, free_port, start_server
from tests.support.tls import self_signed, server_context


class SenderPolicy(RecordingHandler):
    """Takes mail only from senders at brief.example; remembers every MAIL and RSET."""

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[str] = []

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.commands.append(f"MAIL {address}")
        if not address.endswith("@brief.example"):
            return "553 5.7.1 Sender address rejected: not owned by you"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("RSET")
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"u@x", b"s3cret")
    # handled=False: aiosmtpd answers a refusal with 535 itself (by default it sends nothing).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
def servers() -> Iterator[list[SmtpServer]]:
    started: list[SmtpServer] = []
    yield started
    for server in started:
        server.stop()


def check(settings: Settings, context: ssl.SSLContext | None = None) -> dict[str, Finding]:
    return {f.name: f for f in asyncio.run(smtp_findings(settings, tls_context=context))}


def test_a_relay_with_starttls_and_auth_passes_and_nothing_is_sent(
    make_settings,  # type: ignore[no-untyped-def]
    certs: tuple[Path, Path],
    servers: list[SmtpServer],
) -> None:
    handler = SenderPolicy()
    server = start_server(
        handler,
        tls_context=server_context(*certs),
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    servers.append(server)
    settings = make_settings(
        smtp_url=f"smtp://u%40x:s3cret@127.0.0.1:{server.port}", return_path="b@brief.example"
    )
    found = check(settings, ssl.create_default_context(cafile=str(certs[0])))
    assert list(found) == ["SMTP relay", "STARTTLS", "SMTP AUTH", "envelope sender"]
    assert all(f.level is Level.OK for f in found.values()), found
    assert found["SMTP AUTH"].detail == "logged in as u@x"
    assert "MAIL FROM:<b@brief.example> accepted: 250" in found["envelope sender"].detail
    assert handler.commands == ["MAIL b@brief.example", "RSET"]
    assert handler.received == []


def test_a_relay_without_starttls_fails_that_check_only(
    make_settings,  # type: ignore[no-untyped-def]
    servers: list[SmtpServer],
) -> None:
    handler = SenderPolicy()
    servers.append(start_server(handler))
    settings = make_settings(smtp_url=servers[0].url, return_path="b@brief.example")
    found = check(settings)
    assert [(n, f.level) for n, f in found.items()] == [
        ("SMTP relay", Level.OK),
        ("STARTTLS", Level.FAIL),
        ("envelope sender", Level.OK),
    ]
    assert "does not offer STARTTLS" in found["STARTTLS"].detail and found["STARTTLS"].fix
    assert handler.received == []


def test_a_wrong_password_and_a_refused_sender_fail_with_the_relays_reply(
    make_settings,  # type: ignore[no-untyped-def]
    certs: tuple[Path, Path],
    servers: list[SmtpServer],
) -> None:
    handler = SenderPolicy()
    server = start_server(
        handler, tls_context=server_context(*certs), require_starttls=True,
        authenticator=authenticator,
    )  # fmt: skip
    servers.append(server)
    settings = make_settings(
        smtp_url=f"smtp://u%40x:wrong@127.0.0.1:{server.port}",
        from_="Brief <news@elsewhere.example>",
        smtp_timeout=10,
    )
    found = check(settings, ssl.create_default_context(cafile=str(certs[0])))
    assert found["STARTTLS"].level is Level.OK
    assert found["SMTP AUTH"].level is Level.FAIL
    assert "refused the login of u@x: 535" in found["SMTP AUTH"].detail
    assert found["envelope sender"].level is Level.FAIL
    assert "MAIL FROM:<news@elsewhere.example> refused: 553" in found["envelope sender"].detail
    assert "DIGEST_RETURN_PATH" in found["envelope sender"].fix


def test_a_certificate_that_does_not_verify_fails_starttls(
    make_settings,  # type: ignore[no-untyped-def]
    certs: tuple[Path, Path],
    servers: list[SmtpServer],
) -> None:
    servers.append(start_server(SenderPolicy(), tls_context=server_context(*certs)))
    found = check(make_settings(smtp_url=servers[0].url))  # the system's CAs: self-signed fails
    assert found["STARTTLS"].level is Level.FAIL
    assert "TLS handshake failed" in found["STARTTLS"].detail
    assert "certificate" in found["STARTTLS"].fix


def test_an_unreachable_relay_and_a_file_outbox(make_settings) -> None:  # type: ignore[no-untyped-def]
    found = check(make_settings(smtp_url=f"smtp://127.0.0.1:{free_port()}", smtp_timeout=5))
    assert list(found) == ["SMTP relay"]
    assert found["SMTP relay"].level is Level.FAIL
    assert "cannot be reached" in found["SMTP relay"].detail
    skipped = check(make_settings())
    assert [(n, f.level) for n, f in skipped.items()] == [("SMTP", Level.SKIP)]
    assert "file: outbox" in skipped["SMTP"].detail


def test_a_mail_service_api_is_not_taken_for_an_smtp_relay(make_settings) -> None:  # type: ignore[no-untyped-def]
    # model_copy: the ESP URL forms are validated by the transports' own settings check.
    settings = make_settings().model_copy(update={"smtp_url": "ses://eu-west-1"})
    found = check(settings)
    assert [(n, f.level) for n, f in found.items()] == [("SMTP", Level.SKIP)]
    assert found["SMTP"].detail == "not checked: mail goes through the ses: API, not SMTP"


def test_with_verp_the_relay_is_asked_to_take_a_verp_sender(
    make_settings,  # type: ignore[no-untyped-def]
    servers: list[SmtpServer],
) -> None:
    handler = SenderPolicy()
    servers.append(start_server(handler))
    settings = make_settings(smtp_url=servers[0].url, from_="Brief <news@brief.example>", verp=True)
    found = check(settings)
    (mail, rset) = handler.commands
    assert re.fullmatch(r"MAIL bounces\+[0-9a-z]{20,}@brief\.example", mail), mail
    assert rset == "RSET"
    assert found["envelope sender"].level is Level.OK
    assert mail.removeprefix("MAIL ") in found["envelope sender"].detail
    assert handler.received == []
