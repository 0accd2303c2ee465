"""The SMTP pool against a real aiosmtpd server: reuse, renewal, refusals, 421, stalls."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from hypothesis import given
from hypothesis import strategies as st

from digest.delivery.replies import Stage, Verdict
from digest.delivery.smtp import SmtpPool, SmtpTarget, frame
from tests.support.smtp_server import RecordingHandler, SmtpServer, free_port, start_server


def message(n: int) -> bytes:
    return (
        f"From: a@example.org\r\nTo: b{n}@example.org\r\nSubject: {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n\r\nline one\r\n.line with a dot\r\n"
    ).encode()


def pool(server: SmtpServer, **kwargs: object) -> SmtpPool:
    return SmtpPool(SmtpTarget.from_url(server.url), **kwargs)  # type: ignore[arg-type]


async def test_messages_share_few_connections(smtp_server: SmtpServer) -> None:
    p = pool(smtp_server, size=2, timeout=5)
    results = [await p.send("a@example.org", f"b{n}@example.org", message(n)) for n in range(20)]
    await p.close()
    assert all(r.code == 250 for r in results)
    assert len(smtp_server.handler.received) == 20
    assert len(smtp_server.handler.sessions) <= 2
    # Dot-stuffing survived the trip: the body arrives as written.
    assert b"\r\n.line with a dot" in smtp_server.handler.received[0].data


async def test_connection_renewed_after_max_messages(smtp_server: SmtpServer) -> None:
    p = pool(smtp_server, size=1, timeout=5, max_per_connection=3)
    for n in range(9):
        assert (await p.send("a@example.org", f"b{n}@example.org", message(n))).code == 250
    await p.close()
    assert len(smtp_server.handler.sessions) == 3


async def test_refused_recipient_is_a_hard_bounce_and_the_connection_goes_on(
    faulty_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = faulty_smtp_server(rcpt_faults=0, data_faults=0, drop_rate=0)
    p = pool(server, size=1, timeout=5)
    refused = await p.send("a@example.org", "unknown@example.org", message(1))
    taken = await p.send("a@example.org", "b2@example.org", message(2))
    await p.close()
    assert (refused.code, refused.stage) == (550, Stage.RCPT)
    verdict = refused.classify()
    assert verdict.verdict is Verdict.BOUNCE and verdict.hard
    assert "User unknown" in refused.reply
    assert taken.code == 250
    assert len(server.handler.sessions) == 1  # RSET, not a new connection


async def test_421_drops_the_connection_and_the_next_message_reconnects(
    faulty_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = faulty_smtp_server(rcpt_faults=0, data_faults=1.0, drop_rate=0, seed=3)
    handler = server.handler
    p = pool(server, size=1, timeout=5)
    seen = set()
    for n in range(12):
        result = await p.send("a@example.org", f"b{n}@example.org", message(n))
        assert result.code is not None and result.code >= 400
        seen.add(result.code)
    await p.close()
    assert 421 in seen
    assert handler.received == []
    # every reply class the handler can give on DATA was classified without an exception
    assert all(code in (421, 451, 552, 554) for code in seen)


async def test_a_stall_past_the_timeout_defers_and_the_pool_recovers(
    faulty_smtp_server: Callable[..., SmtpServer],
) -> None:
    # The stall is far past the timeout, and the timeout is long enough for a loaded machine
    # to answer every step of the next message in time.
    server = faulty_smtp_server(
        rcpt_faults=0, data_faults=0, drop_rate=0, stall_rate=1.0, stall_seconds=30.0
    )
    p = pool(server, size=1, timeout=3.0)
    stalled = await p.send("a@example.org", "b1@example.org", message(1))
    assert stalled.code is None and stalled.classify().verdict is Verdict.DEFER
    assert stalled.classify().systemic
    server.handler.stall_rate = 0  # type: ignore[attr-defined]
    again = await p.send("a@example.org", "b2@example.org", message(2))
    await p.close()
    assert again.code == 250


async def test_a_dropped_connection_during_data_defers(
    faulty_smtp_server: Callable[..., SmtpServer],
) -> None:
    server = faulty_smtp_server(rcpt_faults=0, data_faults=0, drop_rate=1.0)
    p = pool(server, size=1, timeout=5)
    lost = await p.send("a@example.org", "b1@example.org", message(1))
    await p.close()
    assert lost.code is None and lost.stage is Stage.DATA
    assert lost.classify().verdict is Verdict.DEFER
    assert lost.reply.startswith("connection lost")


async def test_no_server_is_a_connection_failure() -> None:
    p = SmtpPool(SmtpTarget.from_url(f"smtp://127.0.0.1:{free_port()}"), size=1, timeout=2)
    result = await p.send("a@example.org", "b@example.org", message(1))
    await p.close()
    assert result.code is None and result.stage is Stage.CONNECT
    assert result.classify().systemic
    assert "cannot connect" in result.reply


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("smtp://mail.example.org", "mail.example.org", 25, False, None, None),
        ("smtp://u%40x:p%3Aw@mail.example.org:587", "mail.example.org", 587, False, "u@x", "p:w"),
        ("smtps://mail.example.org", "mail.example.org", 465, True, None, None),
    ],
)
def test_target_from_url(
    url: str, host: str, port: int, tls: bool, user: str | None, password: str | None
) -> None:
    target = SmtpTarget.from_url(url)
    assert (target.host, target.port, target.implicit_tls) == (host, port, tls)
    assert (target.username, target.password) == (user, password)


@given(st.lists(st.sampled_from([b"a", b".", b"\r\n", b"\n", b"\r", b"..", b"x y"]), max_size=40))
def test_frame_makes_valid_data_that_reads_back_as_sent(parts: list[bytes]) -> None:
    data = b"".join(parts)
    framed = frame(data)
    assert framed.endswith(b"\r\n.\r\n")
    body = framed[: -len(b".\r\n")]
    lines = body.split(b"\r\n")[:-1]
    assert all(b"\r" not in line and b"\n" not in line for line in lines)
    # a receiver removes one leading dot from each line (RFC 5321 4.5.2)
    unstuffed = [line[1:] if line.startswith(b".") else line for line in lines]
    norm = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not norm.endswith(b"\n"):
        norm += b"\n"  # DATA always ends its last line
    assert unstuffed == norm.split(b"\n")[:-1]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A throw-away self-signed certificate for 127.0.0.1 (made with the openssl tool)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class SecureHandler(RecordingHandler):
    """Records whether each message came over TLS and from whom."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, object]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # session.ssl is set by STARTTLS; implicit TLS shows on the transport.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.seen.append((tls, session.auth_data))
        return await super().handle_DATA(server, session, envelope)


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"u@x", b"s3cret")
    # handled=False: aiosmtpd then answers a failure with 535 itself (True would mean we had).
    return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)


def contexts(tls_files: tuple[str, str]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    return server_ctx, client_ctx


async def test_starttls_when_offered_and_auth_from_the_url(tls_files: tuple[str, str]) -> None:
    server_ctx, client_ctx = contexts(tls_files)
    handler = SecureHandler()
    server = start_server(
        handler,
        tls_context=server_ctx,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    try:
        url = f"smtp://u%40x:s3cret@127.0.0.1:{server.port}"
        p = SmtpPool(SmtpTarget.from_url(url), size=1, timeout=5, tls_context=client_ctx)
        results = [await p.send("a@example.org", f"b{n}@example.org", message(n)) for n in range(3)]
        await p.close()
        bad = SmtpPool(
            SmtpTarget.from_url(url.replace("s3cret", "wrong")),
            size=1,
            timeout=2,
            tls_context=client_ctx,
        )
        refused = await bad.send("a@example.org", "b@example.org", message(9))
        await bad.close()
    finally:
        server.stop()
    assert [r.code for r in results] == [250, 250, 250]
    assert handler.seen == [(True, b"u@x")] * 3
    assert len(handler.sessions) == 1
    # A wrong password is our setup's fault, not the subscriber's: retried, never a bounce.
    assert refused.stage is Stage.CONNECT and refused.code == 535, refused
    assert refused.classify().verdict is Verdict.DEFER and refused.classify().systemic


async def test_implicit_tls_for_smtps_urls(tls_files: tuple[str, str]) -> None:
    server_ctx, client_ctx = contexts(tls_files)
    handler = SecureHandler()
    server = start_server(handler, ssl_context=server_ctx)
    try:
        p = SmtpPool(
            SmtpTarget.from_url(f"smtps://127.0.0.1:{server.port}"),
            size=1,
            timeout=5,
            tls_context=client_ctx,
        )
        result = await p.send("a@example.org", "b@example.org", message(1))
        await p.close()
    finally:
        server.stop()
    assert result.code == 250
    assert handler.seen == [(True, None)]
