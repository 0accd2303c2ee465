"""Real SMTP servers for tests: aiosmtpd in a thread, recording what it accepts, or misbehaving.

``RecordingHandler`` keeps every accepted message; ``FaultyHandler`` also answers at random
with 421, 451, 452, 550, 552 and 554, drops the connection during DATA (before or after
taking the message), and stalls past the client's timeout. Fixtures: ``smtp_server`` (a
recording server) and ``faulty_smtp_server`` (a factory taking the fault rates).
Use them from another test module with ``from tests.support.smtp_server import smtp_server``.
"""

from __future__ import annotations

import asyncio
import errno
import random
import re
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    session: int  # which connection carried it
    mail_options: tuple[str, ...] = ()  # the MAIL FROM parameters (SIZE=, SMTPUTF8, BODY=)

    @property
    def message_id(self) -> str:
        """The Message-ID header's value."""
        head = self.data.split(b"\r\n\r\n", 1)[0]
        match = _MESSAGE_ID.search(head)
        return match.group(1).decode() if match else ""


@dataclass
class RecordingHandler:
    """Accepts everything and remembers it."""

    received: list[Received] = field(default_factory=list)
    sessions: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accept(session, envelope)
        return "250 2.0.0 OK queued"

    def accept(self, session: Any, envelope: Any) -> None:
        """Record the message as taken."""
        with self.lock:
            self.sessions.add(id(session))
            self.received.append(
                Received(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    bytes(envelope.content),
                    id(session),
                    tuple(envelope.mail_options),
                )
            )

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        with self.lock:
            return Counter(r.message_id for r in self.received)


@dataclass
class FaultyHandler(RecordingHandler):
    """Fails at random. Rates are per RCPT or per DATA; addresses with ``unknown`` in them are
    always refused with 550 5.1.1 (a hard bounce)."""

    seed: int = 1
    rcpt_faults: float = 0.1  # 450/451/452/550/552/554 to RCPT
    data_faults: float = 0.1  # 421/451/552/554 after DATA
    drop_rate: float = 0.03  # connection dropped during DATA, message not taken
    drop_after_accept_rate: float = 0.0  # message taken, then the connection dropped
    stall_rate: float = 0.0  # no reply for ``stall_seconds``
    stall_seconds: float = 3.0
    stall_reply: str = "451 4.4.2 Timed out"  # after a stall; "250" to take it slowly
    faults: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _roll(self, rate: float) -> bool:
        with self.lock:
            return self.rng.random() < rate

    def _count(self, name: str) -> None:
        with self.lock:
            self.faults[name] += 1

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if "unknown" in address:
            self._count("550 unknown")
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self._roll(self.rcpt_faults):
            reply = self.rng.choice(
                [
                    "451 4.3.0 Temporary lookup failure",
                    "452 4.2.2 Mailbox full, try later",
                    "550 5.7.1 Message rejected by policy",
                    "552 5.2.2 Mailbox over quota",
                    "554 5.7.1 Relay access denied",
                    "421 4.7.0 Too many connections, closing",
                ]
            )
            self._count(reply[:3] + " rcpt")
            if reply.startswith("421"):
                asyncio.get_running_loop().call_soon(server.transport.close)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._roll(self.stall_rate):
            self._count("stall")
            await asyncio.sleep(self.stall_seconds)
            if self.stall_reply.startswith("250"):
                self.accept(session, envelope)
                return "250 2.0.0 OK, slowly"
            return self.stall_reply
        if self._roll(self.drop_rate):
            self._count("drop")
            server.transport.abort()
            return "451 never seen"
        if self._roll(self.drop_after_accept_rate):
            self._count("drop after accept")
            self.accept(session, envelope)
            server.transport.abort()
            return "250 never seen"
        if self._roll(self.data_faults):
            reply = self.rng.choice(
                [
                    "451 4.3.0 Local error in processing",
                    "552 5.3.4 Message too big for system",
                    "554 5.6.0 Transaction failed",
                    "421 4.3.2 Service shutting down",
                ]
            )
            self._count(reply[:3] + " data")
            if reply.startswith("421"):
                asyncio.get_running_loop().call_soon(server.transport.close)
            return reply
        self.accept(session, envelope)
        return "250 2.0.0 OK queued"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    """A running server: where it listens and its handler."""

    controller: Controller
    handler: RecordingHandler

    @property
    def port(self) -> int:
        """The TCP port."""
        return int(self.controller.port)

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:PORT`` for DIGEST_SMTP_URL."""
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Shut the server down."""
        self.controller.stop()


def start_server(handler: RecordingHandler, **server_kwargs: Any) -> SmtpServer:
    """Start aiosmtpd with ``handler`` on a free loopback port, in a thread."""
    # aiosmtpd gives its thread 5 s to come up by default, which a busy machine can miss.
    server_kwargs.setdefault("ready_timeout", 60.0)
    for attempt in range(5):
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **server_kwargs)
        try:
            controller.start()
        except OSError as exc:
            # Another process took the port between free_port() and the bind: take another.
            if exc.errno != errno.EADDRINUSE or attempt == 4:
                raise
            controller.stop(no_assert=True)
            controller.loop.close()
            continue
        return SmtpServer(controller, handler)
    raise AssertionError("unreachable")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that accepts and records every message."""
    server = start_server(RecordingHandler())
    yield server
    server.stop()


@pytest.fixture
def faulty_smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """A factory: ``faulty_smtp_server(rcpt_faults=0.1, ...)`` starts a misbehaving server."""
    servers: list[SmtpServer] = []

    def start(**rates: Any) -> SmtpServer:
        server = start_server(FaultyHandler(**rates))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
