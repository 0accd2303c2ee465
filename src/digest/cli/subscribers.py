"""``digest subscribers``: add, list, show, remove, import, export and erase subscribers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import subscribers as store
from digest import subscribers_csv
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.errors import ConfirmationRequired, ImportFileError, RowsRejected
from digest.models import Subscriber
from digest.states import SubscriberStatus

if TYPE_CHECKING:
    from rich.progress import Progress

STATUSES = [s.value for s in SubscriberStatus]


def _as_dict(sub: Subscriber) -> dict[str, Any]:
    return {name: getattr(sub, name) for name in Subscriber.model_fields}


@click.group()
def subscribers() -> None:
    """Manage subscribers."""


@subscribers.command()
@click.argument("email")
@click.option("--name", help="display name")
@click.option("--cadence", type=click.Choice(["daily", "weekly"], case_sensitive=False))
@click.option("--topics", help="comma-separated topics (post categories); none = all")
@click.option("--timezone", "timezone_", metavar="TZ", help="IANA timezone, e.g. Europe/Paris")
@click.option("--send-hour", type=int, help="local hour 0-23 at which the digest goes out")
@click.option("--confirmed", is_flag=True, help="active at once (you hold their consent)")
@pass_app
def add(
    app: AppContext,
    email: str,
    name: str | None,
    cadence: str | None,
    topics: str | None,
    timezone_: str | None,
    send_hour: int | None,
    confirmed: bool,
) -> None:
    """Add a subscriber (pending unless --confirmed), or update one that exists."""
    settings = app.settings
    with app.db.transaction() as session:
        sub = store.add(
            session,
            email,
            name=name,
            cadence=cadence,
            topics=topics,
            timezone=timezone_,
            send_hour=send_hour,
            confirmed=confirmed,
            default_timezone=settings.timezone,
            default_send_hour=settings.send_hour,
        )
        click.echo(
            f"{shown(sub.email)}: {sub.status}, {sub.cadence}, {shown(sub.timezone)} "
            f"{sub.send_hour:02d}:00"
        )


@subscribers.command(name="list")
@click.option(
    "--status", type=click.Choice(STATUSES, case_sensitive=False), help="only this status"
)
@click.option("--limit", type=click.IntRange(min=1), help="at most this many")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="skip this many")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def list_(
    app: AppContext, status: str | None, limit: int | None, offset: int, as_json: bool
) -> None:
    """List subscribers in address order."""
    with app.db.transaction() as session:
        subs = store.list_subscribers(session, status=status, limit=limit, offset=offset)
    if as_json:
        echo_json([_as_dict(s) for s in subs])
        return
    if not subs:
        click.echo("no subscribers")
        return
    for s in subs:
        topics = shown(",".join(s.topics)) or "all topics"
        click.echo(
            f"{shown(s.email)}\t{s.status}\t{s.cadence}\t{shown(s.timezone)} "
            f"{s.send_hour:02d}:00\t{topics}"
        )


@subscribers.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def show(app: AppContext, email: str, as_json: bool) -> None:
    """Show everything stored about one subscriber, consent record included."""
    with app.db.transaction() as session:
        sub = store.get(session, email)
    data = _as_dict(sub)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:>20}: {shown(','.join(value) if isinstance(value, list) else value)}")


@subscribers.command()
@click.argument("email")
@pass_app
def remove(app: AppContext, email: str) -> None:
    """Unsubscribe someone: no more mail, queued mail cancelled, record and consent kept."""
    with app.db.transaction() as session:
        sub = store.get(session, email)
        changed = store.unsubscribe(session, sub)
    click.echo(f"{shown(sub.email)}: {'unsubscribed' if changed else 'already ' + sub.status}")


@subscribers.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="do not ask (required when stdin is not a terminal)")
@pass_app
def erase(app: AppContext, email: str, yes: bool) -> None:
    """Delete the person's data for good (deliveries included); keep only a hash as suppressed.

    Asks first on a terminal; elsewhere (a script, a pipe, cron) --yes is required.
    """
    if not yes:
        if not sys.stdin.isatty():
            raise ConfirmationRequired(
                f"erasing {shown(email.strip())} cannot be undone and nobody can be asked here "
                "(stdin is not a terminal): add --yes"
            )
        click.confirm(f"Erase every record of {shown(email)}? This cannot be undone", abort=True)
    with app.db.transaction() as session:
        store.erase(session, email)
    click.echo(
        f"erased {shown(email.strip())}: data deleted, address hash kept on the suppression list"
    )


@subscribers.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="JSON report for programs")
@pass_app
def import_(app: AppContext, file: Path, as_json: bool) -> None:
    """Import subscribers from a CSV file with a header row (email required).

    Columns in any order: email, name, cadence, topics, timezone, send_hour, status, and the
    columns `export` writes. Valid rows go in in one transaction; each invalid row is reported.
    Exit code 3 when some rows were rejected.
    """
    stream = subscribers_csv.open_csv(file)
    rows = list(subscribers_csv.read_rows(stream))
    if not rows:
        raise ImportFileError(f"{file} has a header but no rows")
    settings = app.settings
    with _progress(len(rows), quiet=as_json) as advance, app.db.transaction() as session:
        report = subscribers_csv.import_rows(
            session,
            rows,
            default_timezone=settings.timezone,
            default_send_hour=settings.send_hour,
            progress=advance,
        )
    if as_json:
        echo_json(report.__dict__ | {"errors": [e.__dict__ for e in report.errors]})
    else:
        for err in report.errors:
            who = shown(err.email) or "(no email)"
            click.echo(f"line {err.line}: {who}: {shown(err.reason)}", err=True)
        click.echo(
            f"{report.rows} rows: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.merged} merged duplicates, "
            f"{report.suppressed} suppressed, {len(report.errors)} rejected"
        )
    if report.errors:
        raise RowsRejected(f"{len(report.errors)} of {report.rows} rows rejected")


@subscribers.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--status", type=click.Choice(STATUSES, case_sensitive=False), help="only this status"
)
@pass_app
def export(app: AppContext, file: Path | None, status: str | None) -> None:
    """Export subscribers as CSV to FILE (or standard output), in the form import reads."""
    with app.db.transaction() as session:
        rows = list(subscribers_csv.export_rows(session, status=status))
    if file is None:
        subscribers_csv.write_csv(rows, sys.stdout)
        return
    tmp = file.with_name(f".{file.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        count = subscribers_csv.write_csv(rows, fh)
    tmp.replace(file)  # never leave a half-written export under the real name
    click.echo(f"exported {count} subscribers to {file}", err=True)


class _progress:
    """A rich progress bar on stderr for large files; silent for small ones or --json."""

    def __init__(self, total: int, *, quiet: bool) -> None:
        self.total = total
        self.bar: Progress | None = None
        if not quiet and total >= 1000:
            # rich only for a bar that is shown: every other command starts without it.
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("importing"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("import", total=self.total)
        bar = self.bar
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
