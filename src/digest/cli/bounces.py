"""``digest bounces import``: bounce reports, spam complaints and unsubscribe requests by mail.

Most bounces arrive after the relay has accepted a digest, as a delivery status notification
(RFC 3464) mailed to the envelope sender, and complaints come from mailbox providers' feedback
loops (RFC 5965). Pipe that mailbox into this command, from the MTA or from cron:

    digest-bounces: "|/srv/digest/.venv/bin/digest bounces import -"     (Postfix aliases)
    digest bounces import /var/mail/digest-bounces/                    (a Maildir or folder)

A message that is not a report (an out-of-office reply) is counted and otherwise ignored, and
the exit code stays 0, so an MTA never bounces the bounce. Importing a message twice changes
nothing the second time.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from digest.cli.context import AppContext, echo_json, pass_app
from digest.delivery.bounces import BounceTally, record_reports
from digest.delivery.dsn import NotAReport, Report
from digest.delivery.inbound import read_inbound
from digest.errors import InvalidInput, NotFound


def _files(path: str) -> Iterator[tuple[str, Path | None]]:
    """(name, file) for each message under ``path``; ``-`` is stdin (file None)."""
    if path == "-":
        yield "stdin", None
        return
    where = Path(path)
    if where.is_file():
        yield path, where
        return
    if not where.is_dir():
        raise NotFound(f"no such file or folder: {path}")
    # A Maildir keeps finished messages in cur/ and new/; tmp/ holds ones still being written.
    folders = [where / "cur", where / "new"] if (where / "new").is_dir() else [where]
    for folder in folders:
        for file in sorted(folder.iterdir()):
            if file.is_file() and not file.name.startswith("."):
                yield str(file), file


@click.group()
def bounces() -> None:
    """Record bounces and complaints that arrive after sending."""


@bounces.command(name="import")
@click.argument("paths", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def import_(app: AppContext, paths: tuple[str, ...], as_json: bool) -> None:
    """Read bounce reports (DSN), complaints (ARF) and mails to the unsubscribe address from
    files, folders (a Maildir) or stdin ('-', the default)."""
    if not paths and sys.stdin.isatty():
        raise InvalidInput("give files or folders to read, or pipe one message in ('-')")
    sources = [item for path in (paths or ("-",)) for item in _files(path)]
    reports: list[Report] = []
    not_reports: list[str] = []
    for name, file in sources:
        raw = sys.stdin.buffer.read() if file is None else file.read_bytes()
        try:
            reports.extend(read_inbound(raw))
        except NotAReport as exc:
            not_reports.append(f"{name}: {exc}")
    tally = BounceTally()
    if reports:
        with app.db.transaction() as session:
            tally = record_reports(session, reports, app.settings)
    counts = tally.as_dict()
    if as_json:
        echo_json({"messages": len(sources), **counts, "not_reports": not_reports})
        return
    click.echo(
        f"{len(sources)} message(s): {counts['hard']} hard bounce(s), {counts['soft']} soft, "
        f"{counts['complaint']} complaint(s), {counts['delayed']} delayed, "
        f"{counts['unsubscribe']} unsubscribe request(s); "
        f"{counts['stopped']} subscriber(s) stopped, {counts['unmatched']} not ours"
    )
    for line in not_reports:
        click.echo(f"not a report: {line}")
