"""``digest serve``: the web app, the scheduler and one delivery worker in one process.

All three share one asyncio event loop: uvicorn serves the app, APScheduler ticks on the loop,
and the worker's store calls run in threads. SIGTERM or SIGINT shuts down in order: stop
accepting connections, stop the scheduler (a job in progress finishes), let the worker finish
what is in flight and give the rest of its leases back; the process exits within 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import click
import uvicorn
from fastapi import FastAPI

from digest.cli.context import AppContext, pass_app
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import run_worker
from digest.errors import ServiceStopped
from digest.logs import configure_logging
from digest.schedule import Scheduler

log = logging.getLogger(__name__)

WEB_GRACE = 10  # seconds open connections get to finish after SIGTERM
SHUTDOWN_LIMIT = 25.0  # everything stopped by then, inside the 30 s a supervisor allows


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ``serve`` owns SIGTERM/SIGINT and stops the
    scheduler and the worker too, not only the web server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; OSError naming the address when it is taken.

    Bound here, before anything starts, so a busy port is one line and a non-zero exit rather
    than a half-started service.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise OSError(f"cannot listen on {host}:{port} ({exc})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


async def run_service(settings: Settings, db: Database, app: FastAPI, sock: socket.socket) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code (0 after a clean shutdown)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    config = uvicorn.Config(
        app,
        log_config=None,  # our handler (logs.py) formats uvicorn's lines too
        access_log=True,
        proxy_headers=False,  # the app trusts X-Forwarded-For from DIGEST_TRUSTED_PROXIES only
        timeout_graceful_shutdown=WEB_GRACE,
    )
    server = _Server(config)
    scheduler = Scheduler(settings, db)

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            server.force_exit = True  # a second signal: stop waiting for open connections
            return
        log.info("shutting down", extra={"signal": sig.name})
        server.should_exit = True
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    web = asyncio.create_task(server.serve(sockets=[sock]), name="web")
    worker = asyncio.create_task(run_worker(settings, db, stop), name="worker")
    scheduler.start()
    host, port = sock.getsockname()[:2]
    log.info(
        "serving",
        extra={
            "listen": f"http://{host}:{port}",
            "base_url": settings.base_url,
            "store": db.dialect,
            "mail": _where_mail_goes(settings.smtp_url),
        },
    )
    code = 0
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({web, worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (web, worker):
            if task in done:
                # One part ended on its own: the service is not whole, so stop it all.
                error = task.exception()
                log.error(
                    "%s stopped unexpectedly",
                    task.get_name(),
                    exc_info=(type(error), error, error.__traceback__) if error else None,
                )
                code = 1
        server.should_exit = True
        stop.set()
        try:
            await asyncio.wait_for(
                asyncio.gather(scheduler.stop(), web, worker, return_exceptions=True),
                timeout=SHUTDOWN_LIMIT,
            )
        except TimeoutError:
            log.error("shutdown took too long; exiting anyway")
            code = 1
    finally:
        stopping.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
        sock.close()
    log.info("stopped", extra={"exit_code": code})
    return code


def _where_mail_goes(smtp_url: str) -> str:
    """The transport without credentials, for the log."""
    parts = urlsplit(smtp_url)
    if parts.scheme == "file":
        return smtp_url
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}".rstrip(":")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port"
)
@pass_app
def serve(app: AppContext, host: str, port: int) -> None:
    """Run the web app, the scheduler and a delivery worker in one process (stop: SIGTERM)."""
    from digest.web.app import create_app

    app.create_db()  # serve makes the store if there is none, as `digest db upgrade` does
    settings = app.settings
    sock = listen(host, port)
    try:
        web = create_app(settings, app.db)
    except BaseException:
        sock.close()
        raise
    configure_logging(settings)
    code = asyncio.run(run_service(settings, app.db, web, sock))
    if code:
        raise ServiceStopped("digest serve did not stop cleanly; the log above says why")
