"""A real HTTP server on 127.0.0.1 for the posts tests: feeds, validators, redirects, faults.

Routes are registered per test; every request's path and headers are recorded so tests can
assert what the client sent (If-None-Match, If-Modified-Since).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    redirect_to: str | None = None
    delay: float = 0.0
    # Send the body in pieces without a Content-Length, so only a streamed cap can stop it.
    stream_chunks: int = 0
    extra_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    """A server that does not print a client's early hang-up to stderr.

    The fetcher closes the connection as soon as it has what it needs (a 404's status line, a
    size cap); the stock server would then print a traceback that CLI tests read as output.
    """

    def handle_error(self, request: object, client_address: object) -> None:
        return


class FeedServer:
    """A threaded http.server with per-path routes; ``url(path)`` gives the address."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(
                    Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.redirect_to is not None:
                    self.send_response(
                        route.status if route.status in (301, 302, 307, 308) else 302
                    )
                    self.send_header("Location", route.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self._send(304, b"", None, route)
                    return
                if (
                    route.last_modified
                    and self.headers.get("If-Modified-Since") == route.last_modified
                ):
                    self._send(304, b"", None, route)
                    return
                if route.stream_chunks:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        for _ in range(route.stream_chunks):
                            self.wfile.write(route.body)
                            self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                self._send(route.status, route.body, route.content_type, route)

            def _send(
                self, status: int, body: bytes, ctype: str | None, route: Route | None = None
            ) -> None:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                if route is not None:
                    if route.etag:
                        self.send_header("ETag", route.etag)
                    if route.last_modified:
                        self.send_header("Last-Modified", route.last_modified)
                    for key, value in route.extra_headers.items():
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> FeedServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        """The full URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, **kwargs: object) -> str:
        """Register what ``path`` answers; returns its URL."""
        self.routes[path] = Route(**kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def seen(self, path: str) -> list[Seen]:
        """The requests made to ``path`` so far."""
        return [r for r in self.requests if r.path == path]
