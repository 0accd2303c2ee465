"""``digest announce``: one-off mail to a newsletter's readers: create, preview, test, schedule,
send, cancel, list, show. Sending queues the mail; a worker or ``serve`` sends it."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from digest import announcement_copies, announcements
from digest.announcement_rules import (
    audience,
    check_at,
    check_local,
    parse_addresses,
    parse_moment,
)
from digest.audit_states import draft_fields, schedule_state
from digest.cli.audited import note, note_apart
from digest.cli.context import (
    AppContext,
    echo_json,
    newsletter_option,
    pass_app,
    shown,
    shown_lines,
)
from digest.cli.preview import message_part
from digest.clock import utcnow
from digest.errors import InvalidInput
from digest.models_campaigns import Announcement

DAY = click.DateTime(formats=["%Y-%m-%d"])
DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="print the audience and a sample; do nothing"
)


@click.group()
def announce() -> None:
    """One-off announcements to a newsletter's readers."""


def _say_reach(found: announcements.Reach, what: str) -> None:
    more = found.count - len(found.sample)
    click.echo(f"dry run: {what} {found.count} readers; nothing was written or sent")
    click.echo(f"sample: {', '.join(found.sample)}{f' and {more} more' if more > 0 else ''}")


@announce.command()
@newsletter_option
@click.option("--subject", help="the subject line")
@click.option(
    "--body-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the body, in Markdown (UTF-8)",
)
@click.option("--topics", metavar="a,b", help="only readers of these topics (or of every topic)")
@click.option("--cadence", type=click.Choice(["daily", "weekly"]), help="only readers of it")
@click.option("--joined-after", type=DAY, help="only readers active since this day (YYYY-MM-DD)")
@click.option("--joined-before", type=DAY, help="only readers active before this day")
@click.option(
    "--addresses",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="only these addresses: a file, one per line",
)
@click.option("--template", "template", metavar="SET", help="render the template set SET instead")
@DRY_RUN
@pass_app
def create(
    app: AppContext,
    newsletter: str | None,
    subject: str | None,
    body_file: Path | None,
    topics: str | None,
    cadence: str | None,
    joined_after: datetime | None,
    joined_before: datetime | None,
    addresses: Path | None,
    template: str | None,
    dry_run: bool,
) -> None:
    """Write an announcement (a draft); prints its id alone on stdout."""
    markdown = _text(body_file) if body_file else ""
    listed = parse_addresses(_text(addresses).splitlines()) if addresses else ()
    wanted = audience(
        0,
        topics=topics,
        cadence=cadence,
        joined_after=joined_after.date() if joined_after else None,
        joined_before=joined_before.date() if joined_before else None,
        addresses=listed,
    )
    draft = announcements.Draft(subject, markdown, template, wanted)
    with app.db.transaction() as session:
        if dry_run:
            _row, found = announcements.plan(session, newsletter, draft, app.settings)
            _say_reach(found, "it would reach")
            return
        made = announcements.create(session, newsletter, draft, app.settings)
        fields = draft_fields(session, made)
        note(session, "announcement.create", f"announcement {made.id}", after=fields)
    click.echo(f"announcement #{made.id}: a draft for {fields['readers']} readers", err=True)
    click.echo(str(made.id))


@announce.command()
@click.argument("announcement_id", metavar="ID", type=int)
@click.option("--to", "to", metavar="EMAIL", help="as this reader gets it (default: a sample)")
@click.option(
    "--format", "fmt", type=click.Choice(["html", "text", "eml"]), default="html", show_default=True
)
@pass_app
def preview(app: AppContext, announcement_id: int, to: str | None, fmt: str) -> None:
    """Show the announcement as a reader would get it; sends nothing."""
    message = announcement_copies.preview(
        app.db, app.settings, announcement_id, address=to, now=utcnow()
    )
    data = message if fmt == "eml" else message_part(message, fmt).encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


@announce.command()
@click.argument("announcement_id", metavar="ID", type=int)
@click.argument("address")
@pass_app
def test(app: AppContext, announcement_id: int, address: str) -> None:
    """Send one copy to ADDRESS now, marked as a test."""
    sent = announcement_copies.send_test(
        app.db, app.settings, announcement_id, address=address, now=utcnow()
    )
    note_apart(app.db, "announcement.test", f"announcement {announcement_id}")
    click.echo(f"test copy of announcement #{announcement_id} to {sent.address}: 1 sent")


@announce.command()
@click.argument("announcement_id", metavar="ID", type=int)
@click.option("--at", "at", metavar="ISO-8601", help="send to everyone at this moment")
@click.option("--local-hour", type=int, metavar="H", help="send at H:00 in each reader's zone ...")
@click.option("--on", "on", type=DAY, metavar="YYYY-MM-DD", help="... on this day")
@DRY_RUN
@pass_app
def schedule(
    app: AppContext,
    announcement_id: int,
    at: str | None,
    local_hour: int | None,
    on: datetime | None,
    dry_run: bool,
) -> None:
    """Schedule the announcement: --at a moment, or --local-hour H --on DAY."""
    if (at is None) == (local_hour is None) or (local_hour is None) != (on is None):
        raise click.UsageError("give either --at, or --local-hour with --on")
    now = utcnow()
    with app.db.transaction() as session:
        if dry_run:
            found = announcements.current_reach(
                session, announcements.get(session, announcement_id)
            )
            if at is not None:
                check_at(parse_moment(at), now)
            else:
                check_local(found.zones, int(local_hour or 0), _day(on), now)
            _say_reach(found, "it would reach")
            return
        before = schedule_state(announcements.get(session, announcement_id))
        if at is not None:
            announcements.schedule_at(session, announcement_id, parse_moment(at), now)
        else:
            late = announcements.schedule_local(
                session, announcement_id, int(local_hour or 0), _day(on), now
            ).late_zones
        row = announcements.get(session, announcement_id)
        after = schedule_state(row)
        note(session, "announcement.schedule", f"announcement {row.id}", before=before, after=after)
    click.echo(f"announcement #{announcement_id} scheduled: {_when(row)}")
    if at is None and late:
        click.echo(
            f"already past in {len(late)} zone(s) ({', '.join(late)}): "
            "those readers get it on the scheduler's next tick"
        )


def _day(on: datetime | None) -> date:
    return on.date() if on else date.min


@announce.command()
@click.argument("announcement_id", metavar="ID", type=int)
@DRY_RUN
@pass_app
def send(app: AppContext, announcement_id: int, dry_run: bool) -> None:
    """Queue the announcement for every reader now; a worker or `digest serve` sends it."""
    with app.db.transaction() as session:
        if dry_run:
            row = announcements.get(session, announcement_id)
            _say_reach(announcements.current_reach(session, row), "it would go to")
            return
        done = announcements.send(session, app.settings, announcement_id, utcnow())
        counts = {"queued": done.added, "recipients": done.recipients}
        note(session, "announcement.send", f"announcement {announcement_id}", after=counts)
    click.echo(
        f"announcement #{announcement_id}: {done.added} queued now, {done.recipients} in all; "
        "a worker or `digest serve` sends them"
    )


@announce.command()
@click.argument("announcement_id", metavar="ID", type=int)
@pass_app
def cancel(app: AppContext, announcement_id: int) -> None:
    """Cancel the announcement: what is still queued is not sent."""
    with app.db.transaction() as session:
        done = announcements.cancel(session, announcement_id, utcnow())
        counts = {"cancelled": done.cancelled, "sent": done.sent}
        note(session, "announcement.cancel", f"announcement {announcement_id}", after=counts)
    flight = f" ({done.in_flight} being sent, which may still arrive)" if done.in_flight else ""
    click.echo(
        f"announcement #{announcement_id} cancelled: {done.cancelled} queued mails cancelled, "
        f"{done.sent} had gone out already{flight}"
    )


def _when(row: Announcement) -> str:
    if row.send_at is not None:
        return f"at {row.send_at:%Y-%m-%d %H:%M} UTC"
    if row.local_hour is not None:
        return f"at {row.local_hour:02d}:00 on {row.local_date} in each reader's timezone"
    return "not scheduled"


@announce.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the announcements, newest first."""
    with app.db.transaction() as session:
        rows = [announcements.summary(session, r) for r in announcements.listed(session)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no announcements")
    for row in rows:
        click.echo(
            f"#{row['id']}\t{row['newsletter']}\t{row['status']}\t{row['recipients']} recipients"
            f"\t{shown(row['subject'])}"
        )


@announce.command()
@click.argument("announcement_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def show(app: AppContext, announcement_id: int, as_json: bool) -> None:
    """Show one announcement: its audience, schedule and deliveries by status."""
    with app.db.transaction() as session:
        row = announcements.get(session, announcement_id)
        data: dict[str, Any] = announcements.summary(session, row)
        when = _when(row)
    if as_json:
        echo_json(data)
        return
    body = data.pop("body_markdown")
    data["when"] = when
    data["deliveries"] = ", ".join(f"{k} {v}" for k, v in data["deliveries"].items()) or "none"
    for key, value in data.items():
        text = ",".join(value) if isinstance(value, list) else value
        click.echo(f"{key:>14}: {shown(text)}")
    click.echo(f"\n{shown_lines(body)}")


def _text(path: Path) -> str:
    """A file the editor names, as UTF-8 text; InvalidInput when it is not."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
