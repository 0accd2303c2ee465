"""A real HTTP receiver of webhook POSTs on loopback, in a thread: it records each request and
answers as the test tells it (200, 500, too slowly, or not until released)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One POST as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the receiver got, and how it answers next: ``status`` and ``delay`` seconds;
    ``hold`` makes it keep every request open until ``release`` is set."""

    url: str
    status: int = 200
    delay: float = 0.0
    hold: bool = False
    got: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def events(self) -> list[dict[str, Any]]:
        return [r.event for r in self.got]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """The first ``n`` requests, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.got) >= n, f"got {len(self.got)} of {n} requests"
        return self.got[:n]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 for the length of the block."""
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.got.append(Received(self.path, dict(self.headers.items()), body))
            state.arrived.set()
            if state.hold:
                state.release.wait(30)
            if state.delay:
                time.sleep(state.delay)
            answer = b"ok" if state.status < 300 else b"broken"
            try:
                self.send_response(state.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the sender gave up on us first

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 128  # many senders' POSTs arrive at once
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    state = Receiver(url=f"http://{host}:{port}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
