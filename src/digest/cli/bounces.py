"""``digest bounces import``: bounce reports, spam complaints and unsubscribe requests by mail.

Most bounces arrive after the relay has accepted a digest, as a delivery status notification
(RFC 3464) mailed to the envelope sender, and complaints come from mailbox providers' feedback
loops (RFC 5965). Pipe that mailbox into this command, from the MTA or from cron:

    digest-bounces: "|/srv/digest/.venv/bin/digest bounces import -"     (Postfix aliases)
    digest bounces import /var/mail/digest-bounces/                    (a Maildir or folder)

A message that is not a report (an out-of-office reply) is counted and otherwise ignored, and
the exit code stays 0, so an MTA never bounces the bounce. When the store cannot take the
reports (it is down, or anything else unexpected), the exit code is 75 (EX_TEMPFAIL), which
tells the MTA to keep the message and pipe it again later; any other non-zero code would
make it give up on the message for good. Importing a message twice changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from digest.cli.context import AppContext, echo_json, pass_app
from digest.delivery.bounces import BounceTally, record_reports
from digest.delivery.dsn import MAX_REPORT_BYTES, NotAReport, Report
from digest.delivery.inbound import read_inbound
from digest.errors import DigestError, InvalidInput, NotFound


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


class TryAgainLater(DigestError):
    """The reports were read but could not be recorded now; the MTA should retry."""

    exit_code = 75  # EX_TEMPFAIL


def _read(file: Path | None) -> bytes | None:
    """A message's first MAX_REPORT_BYTES; None when a Maildir file went before we got to it.

    Stdin is read to its end even so: an MTA treats a pipe closed early as a failed delivery.
    """
    if file is None:
        head = sys.stdin.buffer.read(MAX_REPORT_BYTES)
        while sys.stdin.buffer.read(1 << 16):
            pass
        return head
    try:
        with file.open("rb") as handle:
            return handle.read(MAX_REPORT_BYTES)
    except FileNotFoundError:
        return None


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
        raw = _read(file)
        if raw is None:
            not_reports.append(f"{name}: gone before it could be read")
            continue
        try:
            reports.extend(read_inbound(raw))
        except NotAReport as exc:
            not_reports.append(f"{name}: {exc}")
    tally = BounceTally()
    if reports:
        try:
            with app.db.transaction() as session:
                tally = record_reports(session, reports, app.settings)
        except Exception as exc:
            # Whatever stopped the write, the reports must not be lost: 75 makes the MTA retry.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TryAgainLater(f"reports not recorded, try again later: {reason}") from None
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
