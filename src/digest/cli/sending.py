"""What ``digest send`` and ``digest demo`` share: deliver the outbox now, with a progress bar."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digest.config import Settings
from digest.db import Database
from digest.delivery.running import DrainReport, drain
from digest.stats import waiting


def _waiting(db: Database) -> int:
    with db.transaction() as session:
        return waiting(session)


def deliver_now(settings: Settings, db: Database, *, quiet: bool = False) -> DrainReport:
    """Send everything due in the outbox, showing progress on stderr; returns the tally."""
    total = _waiting(db)
    if quiet or total < 50:
        return drain(settings, db)
    result: list[DrainReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(drain(settings, db))
        except BaseException as exc:  # re-raised in the caller's thread, where errors are mapped
            errors.append(exc)

    thread = threading.Thread(target=run, name="digest-drain")
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("send", total=total)
        thread.start()
        while thread.is_alive():
            thread.join(0.25)
            bar.update(task, completed=max(total - _waiting(db), 0))
    if errors:
        raise errors[0]
    return result[0]


def describe(report: DrainReport) -> str:
    """One line of what a delivery run did."""
    return (
        f"{report.sent} sent, {report.deferred} deferred for retry, {report.bounced} bounced, "
        f"{report.failed} failed in {report.seconds:.1f} s"
    )
