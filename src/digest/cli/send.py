"""``digest send``: make the edition now and deliver it; ``--dry-run``; ``--test ADDRESS``."""

from __future__ import annotations

import click

from digest import editions
from digest.cli.audited import note_apart
from digest.cli.context import AppContext, echo_json, newsletter_option, pass_app, shown
from digest.cli.sending import deliver_now, describe
from digest.clock import utcnow
from digest.previews import send_test_copy

CADENCES = click.Choice(["daily", "weekly"], case_sensitive=False)
SHOWN = 10  # addresses listed per group of a dry run; the rest are counted
NOTHING_NEW = "nothing new since their last digest"


@click.command()
@click.option("--cadence", type=CADENCES, default="daily", show_default=True)
@click.option("--dry-run", is_flag=True, help="say who would get which posts; send nothing")
@click.option(
    "--due-only",
    is_flag=True,
    help="only readers whose local send hour has come, as the scheduler would send now",
)
@click.option("--test", "test_address", metavar="ADDRESS", help="send one copy, marked as a test")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@newsletter_option
@pass_app
def send(
    app: AppContext,
    newsletter: str | None,
    cadence: str,
    dry_run: bool,
    due_only: bool,
    test_address: str | None,
    as_json: bool,
) -> None:
    """Make the edition now for every active subscriber of CADENCE and deliver it.

    Each subscriber still gets at most one digest per period (local day or ISO week): running
    this twice, or while the scheduler runs, sends nothing twice. Readers whose local send
    hour has not come yet get this period's digest now, ahead of it, and none at their hour
    (the output counts them); --due-only leaves them to the scheduler.
    """
    if test_address:
        _send_test(app, newsletter, cadence, test_address, as_json)
    elif dry_run:
        _dry_run(app, newsletter, cadence, due_only, as_json)
    else:
        _send(app, newsletter, cadence, due_only, as_json)


def _say(as_json: bool, data: dict[str, object], text: str) -> None:
    if as_json:
        echo_json(data)
    else:
        click.echo(text)


def _nothing(cadence: str, report: editions.EditionReport, as_json: bool) -> None:
    _say(
        as_json,
        {"edition": None, "recipients": 0, "left_out": _left_out(report)},
        f"no active {cadence} subscriber is due a digest now; nothing to send\n"
        f"{_left_out_line(report)}",
    )


def _left_out(report: editions.EditionReport) -> dict[str, int]:
    """Readers left out, by reason, the skipped ones ("nothing new") included."""
    return {**report.left_out, NOTHING_NEW: report.skipped}


def _left_out_line(report: editions.EditionReport) -> str:
    shown = [f"{n} {why}" for why, n in _left_out(report).items() if n]
    return f"left out: {'; '.join(shown) if shown else 'nobody'}"


def _ahead_line(report: editions.EditionReport) -> str:
    if not report.ahead:
        return "none of them ahead of their local send hour"
    return (
        f"{report.ahead} of them ahead of their local send hour: they get this period's digest "
        "now and none at their hour (--due-only leaves them to the scheduler)"
    )


def _send(
    app: AppContext, newsletter: str | None, cadence: str, due_only: bool, as_json: bool
) -> None:
    report = editions.make_edition(
        app.db,
        app.settings,
        cadence=cadence,
        now=utcnow(),
        due_only=due_only,
        explain=True,
        newsletter=newsletter,
    )
    if report is None or not report.groups:
        _nothing(cadence, report or editions.EditionReport("", cadence), as_json)
        return
    made = {"edition": report.edition_id, "recipients": report.recipients}
    note_apart(app.db, "edition.make", report.key, after=made)
    delivered = deliver_now(app.settings, app.db, quiet=as_json)
    _say(
        as_json,
        {
            "edition": report.key,
            "recipients": report.recipients,
            "ahead": report.ahead,
            "skipped": report.skipped,
            "left_out": _left_out(report),
            "bodies": report.bodies,
            "delivery": delivered.__dict__,
        },
        f"edition {report.key}: {report.recipients} digests queued ({report.bodies} distinct), "
        f"{report.skipped} skipped with nothing new\n{_ahead_line(report)}\n"
        f"{_left_out_line(report)}\n{describe(delivered)}",
    )


def _dry_run(
    app: AppContext, newsletter: str | None, cadence: str, due_only: bool, as_json: bool
) -> None:
    now = utcnow()
    planned = editions.dry_run(
        app.db, app.settings, cadence=cadence, now=now, due_only=due_only, newsletter=newsletter
    )
    report = planned.report
    if not planned.groups:
        _nothing(cadence, report, as_json)
        return
    plans = [
        {
            "subscribers": g.emails,
            "timezone": g.group.timezone,
            "period": g.group.period.key,
            "skip": g.group.selection.skip,
            "reason": g.group.selection.reason,
            "dont_miss": [p.title for p in g.group.selection.featured],
            "latest": [p.title for p in g.group.selection.latest],
            "ahead": now < g.group.period.due,
        }
        for g in planned.groups
    ]
    if as_json:
        echo_json(
            {
                "edition": report.key,
                "recipients": report.recipients,
                "ahead": report.ahead,
                "skipped": report.skipped,
                "left_out": _left_out(report),
                "groups": plans,
            }
        )
        return
    click.echo(
        f"dry run of {report.key}: {report.recipients} would get a digest, "
        f"{report.skipped} would be skipped; nothing was written or sent\n"
        f"{_ahead_line(report)}\n{_left_out_line(report)}"
    )
    for g in planned.groups:
        who = ", ".join(g.emails[:SHOWN])
        more = len(g.emails) - SHOWN
        where = g.group.timezone
        if now < g.group.period.due and not g.group.selection.skip:
            where += f", ahead of their {g.group.send_hour:02d}:00 local send hour"
        click.echo(f"\n{who}{f' and {more} more' if more > 0 else ''} ({where}):")
        selection = g.group.selection
        if selection.skip:
            click.echo(f"  skipped: {selection.reason}")
            continue
        for post in selection.featured:
            click.echo(f"  Don't Miss: {shown(post.title)}")
        for post in selection.latest:
            click.echo(f"  Latest:     {shown(post.title)}")


def _send_test(
    app: AppContext, newsletter: str | None, cadence: str, address: str, as_json: bool
) -> None:
    """One copy of what a new subscriber of every topic would get, marked as a test."""
    sent = send_test_copy(
        app.db,
        app.settings,
        cadence=cadence,
        address=address,
        now=utcnow(),
        newsletter=newsletter,
    )
    _say(
        as_json,
        {"test": sent.address, "posts": sent.posts, "reply": sent.reply},
        f"test copy of the {cadence} digest ({sent.posts} posts) to {sent.address}: "
        f"1 sent ({shown(sent.reply)})",
    )
