"""``digest worker``: one delivery worker; run several, on several hosts, against one PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from digest.cli.context import AppContext, echo_json, pass_app
from digest.delivery.running import run_async, run_worker
from digest.delivery.worker import BATCH_SIZE
from digest.logs import configure_logging


async def _main(app: AppContext, batch_size: int, until_empty: bool) -> dict[str, object]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # First signal: stop claiming, finish what is in flight, give the rest back.
        loop.add_signal_handler(sig, stop.set)
    try:
        tally = await run_worker(
            app.settings, app.db, stop, until_empty=until_empty, batch_size=batch_size
        )
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return tally.as_dict()


@click.command()
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=BATCH_SIZE,
    show_default=True,
    help="deliveries claimed at a time",
)
@click.option("--until-empty", is_flag=True, help="exit once nothing is due instead of waiting")
@click.option("--json", "as_json", is_flag=True, help="print the totals as JSON on exit")
@pass_app
def worker(app: AppContext, batch_size: int, until_empty: bool, as_json: bool) -> None:
    """Send queued mail until stopped (SIGTERM/SIGINT: finish in-flight mail, then exit)."""
    settings, db = app.settings, app.db
    configure_logging(settings)
    logging.getLogger(__name__).info(
        "worker started: %s, %d connections, store %s",
        settings.smtp_url.split("@")[-1],
        settings.smtp_connections,
        db.dialect,
    )
    totals = run_async(_main(app, batch_size, until_empty))
    if as_json:
        echo_json(totals)
    else:
        counts = totals["counts"] or {}
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing sent"  # type: ignore[attr-defined]
        click.echo(f"worker stopped: {summary}", err=True)
