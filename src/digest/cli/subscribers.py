"""``digest subscribers``: add, list, show, remove, import, export and erase subscribers."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import import_formats, newsletters, subscribers_csv, subscriptions
from digest import subscribers as store
from digest.addresses import email_hash
from digest.audit_states import reader_state, state_of
from digest.cli.audited import note
from digest.cli.context import AppContext, echo_json, newsletter_option, pass_app, shown
from digest.cli.import_progress import ImportProgress
from digest.clock import utcnow
from digest.errors import ConfirmationRequired, ImportFileError, RowsRejected
from digest.states import SubscriberStatus

if TYPE_CHECKING:
    from sqlmodel import Session

STATUSES = [s.value for s in SubscriberStatus]
WELCOME_HELP = "queue the newsletter's welcome mail to whoever this makes active"


def _as_dict(reader: store.Reader, slug: str) -> dict[str, Any]:
    return reader.as_dict() | {"newsletter": slug}


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
@click.option("--alerts/--no-alerts", default=None, help="opt in to (out of) breaking-news alerts")
@click.option("--welcome", is_flag=True, help=WELCOME_HELP)
@click.option(
    "--tracking/--no-tracking",
    default=None,
    help="count (or never count) their clicks; --no-tracking: their mail has plain links",
)
@newsletter_option
@pass_app
def add(
    app: AppContext,
    newsletter: str | None,
    email: str,
    name: str | None,
    cadence: str | None,
    topics: str | None,
    timezone_: str | None,
    send_hour: int | None,
    confirmed: bool,
    alerts: bool | None,
    welcome: bool,
    tracking: bool | None,
) -> None:
    """Add a subscriber (pending unless --confirmed), or update one that exists."""
    settings = app.settings
    with app.db.transaction() as session:
        chosen = newsletters.choose(session, newsletter)
        started = utcnow()
        was = reader_state(session, email, int(chosen.id or 0))
        sub = subscriptions.add(
            session,
            email,
            newsletter_id=int(chosen.id or 0),
            default_cadence=chosen.default_cadence,
            name=name,
            cadence=cadence,
            topics=topics,
            timezone=timezone_,
            send_hour=send_hour,
            confirmed=confirmed,
            alerts=alerts,
            default_timezone=settings.timezone,
            default_send_hour=settings.send_hour,
        )
        if tracking is not None:
            sub = subscriptions.update_preferences(session, sub, tracking_opt_out=not tracking)
        note(session, "subscriber.add", sub.email, before=was, after=state_of(sub))
        if welcome:
            _welcome(app, session, int(chosen.id or 0), started)
        click.echo(
            f"{shown(sub.email)}: {sub.status}, {sub.cadence}, {shown(sub.timezone)} "
            f"{sub.send_hour:02d}:00"
        )


def _welcome(app: AppContext, session: Session, newsletter_id: int, since: datetime) -> None:
    """Queue the welcome mail of everyone this command made active on the newsletter."""
    # Here, not at the top: the templates' stack is loaded only by the commands that render.
    from digest import welcome
    from digest.compose.render import Renderers

    renderers = Renderers(app.settings)
    n = welcome.queue_welcomes_since(
        session, app.settings, newsletter_id, since, renderers=renderers
    )
    click.echo(f"{n} welcome mail{'' if n == 1 else 's'} queued", err=True)


@subscribers.command(name="list")
@click.option(
    "--status", type=click.Choice(STATUSES, case_sensitive=False), help="only this status"
)
@click.option("--limit", type=click.IntRange(min=1), help="at most this many")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="skip this many")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@newsletter_option
@pass_app
def list_(
    app: AppContext,
    newsletter: str | None,
    status: str | None,
    limit: int | None,
    offset: int,
    as_json: bool,
) -> None:
    """List a newsletter's subscribers in address order."""
    with app.db.transaction() as session:
        chosen = newsletters.choose(session, newsletter, live=False)
        subs = store.list_readers(
            session, newsletter_id=int(chosen.id or 0), status=status, limit=limit, offset=offset
        )
    if as_json:
        echo_json([_as_dict(s, chosen.slug) for s in subs])
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
    """Show everything stored about one person: each subscription with its consent record."""
    with app.db.transaction() as session:
        person = store.get(session, email)
        slugs = {int(n.id or 0): n.slug for n in newsletters.listed(session, archived=True)}
        readers = [
            store.Reader(person, sub)
            for sub in store.subscriptions_of(session, int(person.id or 0))
        ]
    if not readers:
        raise store.SubscriberNotFound(f"{person.email} is on no newsletter")
    data = [_as_dict(r, slugs.get(r.newsletter_id, "")) for r in readers]
    if as_json:
        echo_json(data[0] | {"subscriptions": data})
        return
    for i, row in enumerate(data):
        if i:
            click.echo("")
        for key, value in row.items():
            text = ",".join(value) if isinstance(value, list) else value
            click.echo(f"{key:>20}: {shown(text)}")


@subscribers.command()
@click.argument("email")
@newsletter_option
@click.option("--all", "everything", is_flag=True, help="from every newsletter")
@pass_app
def remove(app: AppContext, email: str, newsletter: str | None, everything: bool) -> None:
    """Unsubscribe someone: no more mail, queued mail cancelled, record and consent kept."""
    with app.db.transaction() as session:
        chosen = None if everything else newsletters.choose(session, newsletter, live=False)
        nid = None if chosen is None else int(chosen.id or 0)
        sub = store.get(session, email)
        if nid is not None:
            store.reader(session, email, nid)  # SubscriberNotFound when not on it
        changed = subscriptions.unsubscribe(session, sub, nid)
        if changed:
            where = {"newsletter": chosen.slug if chosen else "all"}
            note(session, "subscriber.unsubscribe", sub.email, after=where)
    click.echo(f"{shown(sub.email)}: {'unsubscribed' if changed else 'already unsubscribed'}")


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
        note(session, "subscriber.erase", email_hash(email))  # the hash only: never the address
    click.echo(
        f"erased {shown(email.strip())}: data deleted, address hash kept on the suppression list"
    )


@subscribers.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="'THEIR COLUMN=field'",
    help="read a column as one of digest's (or =ignore); repeatable",
)
@click.option(
    "--status",
    type=click.Choice(STATUSES, case_sensitive=False),
    help="status of rows that show no consent (no consent or confirmation time)",
)
@click.option("--dry-run", is_flag=True, help="show the mapping and the first rows; write nothing")
@click.option("--json", "as_json", is_flag=True, help="JSON report for programs")
@click.option("--welcome", is_flag=True, help=WELCOME_HELP)
@newsletter_option
@pass_app
def import_(
    app: AppContext,
    file: Path,
    maps: tuple[str, ...],
    status: str | None,
    dry_run: bool,
    as_json: bool,
    newsletter: str | None,
    welcome: bool,
) -> None:
    """Import subscribers from a CSV file with a header row (email required).

    Reads the columns `export` writes, in any order, and the exports of Mailchimp, listmonk,
    Ghost and Substack; --map names any other column. Rows that show no consent need --status.
    Valid rows go in in one transaction; each invalid row is reported. Exit code 3 when some
    rows were rejected.
    """
    stream = subscribers_csv.open_csv(file)
    parsed = import_formats.parse_maps(maps, subscribers_csv.COLUMNS)
    layout, read = subscribers_csv.read_layout(stream, parsed)
    rows = list(read)
    if not rows:
        raise ImportFileError(f"{file} has a header but no rows")
    settings = app.settings
    if dry_run:
        shown_rows = subscribers_csv.preview_rows(
            rows[:_PREVIEW],
            status=status,
            default_timezone=settings.timezone,
            hour=settings.send_hour,
        )
        _echo_preview(layout, shown_rows, len(rows), import_formats.lacking(rows), as_json)
        return
    with ImportProgress(len(rows), quiet=as_json) as advance, app.db.transaction() as session:
        chosen = newsletters.choose(session, newsletter)
        started = utcnow()
        report = subscribers_csv.import_rows(
            session,
            rows,
            newsletter_id=int(chosen.id or 0),
            default_timezone=settings.timezone,
            default_send_hour=settings.send_hour,
            progress=advance,
            status=status,
        )
        counts = {k: v for k, v in report.__dict__.items() if isinstance(v, int)}
        note(session, "subscriber.import", chosen.slug, after=counts | {"file": file.name})
        if welcome:
            _welcome(app, session, int(chosen.id or 0), started)
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


_PREVIEW = 5


def _echo_preview(
    layout: import_formats.Layout,
    rows: list[tuple[int, dict[str, Any] | str]],
    total: int,
    lacking: int,
    as_json: bool,
) -> None:
    mapping = [(c.header, c.describe()) for c in layout.columns]
    if as_json:
        echo_json(
            {
                "format": layout.dialect,
                "columns": [{"column": h, "field": f} for h, f in mapping],
                "rows": total,
                "without_consent": lacking,
                "first_rows": [
                    {"line": line, "error": v} if isinstance(v, str) else {"line": line} | v
                    for line, v in rows
                ],
            }
        )
        return
    click.echo(f"{layout.dialect} file, {total} rows; its columns:")
    for header, field in mapping:
        click.echo(f"  {shown(header) or '(blank)'} -> {field}")
    click.echo(f"the first {len(rows)} rows as they would be stored (nothing written):")
    for line, values in rows:
        if isinstance(values, str):
            click.echo(f"  line {line}: rejected: {shown(values)}")
            continue
        cells = ", ".join(f"{k}={_plain(v)}" for k, v in values.items() if v not in (None, ""))
        click.echo(f"  line {line}: {cells}")
    if lacking:
        click.echo(f"{lacking} of {total} rows show no consent: they need --status")


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return shown(",".join(value))
    return shown(value.isoformat() if hasattr(value, "isoformat") else value)


@subscribers.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--status", type=click.Choice(STATUSES, case_sensitive=False), help="only this status"
)
@newsletter_option
@pass_app
def export(app: AppContext, file: Path | None, status: str | None, newsletter: str | None) -> None:
    """Export a newsletter's subscribers as CSV to FILE (or standard output), in the form
    import reads."""
    with app.db.transaction() as session:
        chosen = newsletters.choose(session, newsletter, live=False)
        rows = list(
            subscribers_csv.export_rows(session, status=status, newsletter_id=int(chosen.id or 0))
        )
    if file is None:
        subscribers_csv.write_csv(rows, sys.stdout)
        return
    tmp = file.with_name(f".{file.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        count = subscribers_csv.write_csv(rows, fh)
    tmp.replace(file)  # never leave a half-written export under the real name
    click.echo(f"exported {count} subscribers to {file}", err=True)
