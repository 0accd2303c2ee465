"""``digest bounces import``: bounce reports, spam complaints and unsubscribe requests by mail.

Most bounces arrive after the relay has accepted a digest, as a delivery status notification
(RFC 3464) mailed to the envelope sender, and complaints come from mailbox providers' feedback
loops (RFC 5965). Pipe that mailbox into this command, from the MTA or from cron:

    digest-bounces: "|/srv/digest/.venv/bin/digest bounces import -"     (Postfix aliases)
    digest bounces import /var/mail/digest-bounces/                    (a Maildir or folder)

A message that is not a report (an out-of-office reply) is counted and otherwise ignored, and
the exit code stays 0, so an MTA never bounces the bounce. When the store cannot take the
reports because it is down, the exit code is 75 (EX_TEMPFAIL), which tells the MTA to keep
the message and pipe it again later; any other non-zero code would make it give up on the
message for good. A message whose reports fail to record in a way a retry would repeat is
listed, the others are recorded, and the exit code is 65. Importing a message twice changes
nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from digest.audit_states import bounce_fields
from digest.cli.audited import note
from digest.cli.context import AppContext, echo_json, pass_app
from digest.delivery.bounces import BounceTally, record_reports
from digest.delivery.dsn import MAX_REPORT_BYTES
from digest.delivery.inbound import read_inbound
from digest.errors import (
    InvalidInput,
    NotAReport,
    NotFound,
    ReportsNotRecorded,
    StoreUnavailable,
    TryAgainLater,
    first_line,
)


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
    not_reports: list[str] = []
    failed: list[str] = []
    tally = BounceTally()
    for name, file in sources:
        raw = _read(file)
        if raw is None:
            not_reports.append(f"{name}: gone before it could be read")
            continue
        try:
            reports = read_inbound(raw)
        except NotAReport as exc:
            not_reports.append(f"{name}: {exc}")
            continue
        # One transaction per message: one that cannot be recorded does not hold back the rest.
        try:
            with app.db.transaction() as session:
                done = record_reports(session, reports, app.settings)
                if (counts := bounce_fields(done)) is not None:
                    note(session, "bounce.record", name, after=counts)
                tally.add(done)
        except (StoreUnavailable, OperationalError, InterfaceError) as exc:
            # The store is down: 75 makes the MTA keep the mail and try again later.
            raise TryAgainLater(
                f"reports not recorded, try again later: {first_line(exc)}"
            ) from None
        except SQLAlchemyError as exc:
            # Anything else would fail the same way every time; say so, go on with the rest.
            failed.append(f"{name}: {first_line(exc)}")
    counts = tally.as_dict()
    if as_json:
        echo_json(
            {"messages": len(sources), **counts, "not_reports": not_reports, "failed": failed}
        )
    else:
        _summary(len(sources), counts, not_reports, failed)
    if failed:
        raise ReportsNotRecorded(f"{len(failed)} message(s) could not be recorded")


def _summary(
    messages: int, counts: dict[str, int], not_reports: list[str], failed: list[str]
) -> None:
    click.echo(
        f"{messages} message(s): {counts['hard']} hard bounce(s), {counts['soft']} soft, "
        f"{counts['complaint']} complaint(s), {counts['delayed']} delayed, "
        f"{counts['unsubscribe']} unsubscribe request(s); "
        f"{counts['stopped']} subscriber(s) stopped, {counts['unmatched']} not ours"
    )
    for line in not_reports:
        click.echo(f"not a report: {line}")
    for line in failed:
        click.echo(f"not recorded: {line}")
