"""``digest status``: the next scheduled sends, editions, outbox counts by state, last errors."""

from __future__ import annotations

import click

from digest import newsletters, webhook_queue
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.clock import utcnow
from digest.newsletter_config import configure
from digest.schedule import next_runs
from digest.settings_report import store_location
from digest.stats import outbox_status


@click.command()
@click.option(
    "--editions",
    type=click.IntRange(0, 100),
    default=5,
    show_default=True,
    help="how many of the latest editions",
)
@click.option(
    "--errors",
    type=click.IntRange(0, 100),
    default=10,
    show_default=True,
    help="how many of the last errors",
)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@click.option(
    "--newsletter", metavar="SLUG", help="only this newsletter's editions, readers and next runs"
)
@pass_app
def status(
    app: AppContext, editions: int, errors: int, as_json: bool, newsletter: str | None
) -> None:
    """Show the latest editions, the outbox by state, and the last delivery errors."""
    with app.db.transaction() as session:
        config = (
            configure(newsletters.get(session, newsletter), app.settings) if newsletter else None
        )
        report = outbox_status(
            session,
            editions=editions,
            errors=errors,
            newsletter_id=config.id if config is not None else None,
        )
        upcoming = next_runs(session, app.settings, utcnow(), newsletter=config)
        hooks = webhook_queue.counts(session)
    store = store_location(app.settings.database_url)
    if as_json:
        runs = [r.__dict__ for r in upcoming]
        echo_json(report.as_dict() | {"store": store, "next_runs": runs, "webhooks": hooks})
        return
    click.echo(f"store: {store}")
    click.echo("next digests:" if upcoming else "next digests: no active subscribers")
    for run in upcoming:
        when = run.at.strftime("%Y-%m-%d %H:%M UTC")
        click.echo(
            f"  {when}  {shown(run.newsletter)} {run.cadence:<6} {run.subscribers:>6} in "
            f"{shown(run.timezone)} at {run.send_hour:02d}:00 local"
        )
    click.echo("subscribers: " + ", ".join(f"{s} {n}" for s, n in report.subscribers.items()))
    click.echo("outbox: " + ", ".join(f"{s} {n}" for s, n in report.counts.items()))
    a = report.alerts
    click.echo(
        f"alerts: sent {a['sent']}, held by budget {a['held_budget']}, held by quiet hours "
        f"{a['held_quiet']}, expired {a['expired']}, folded into digests {a['folded']}"
    )
    click.echo("webhooks: " + ", ".join(f"{s} {n}" for s, n in hooks.items()))
    click.echo("editions:" if report.editions else "editions: none yet")
    for ed in report.editions:
        tally = ", ".join(f"{s} {n}" for s, n in ed.counts.items() if n)
        click.echo(f"  {ed.key}  {ed.recipients} recipients  {tally or 'no deliveries'}")
    click.echo("last errors:" if report.errors else "last errors: none")
    for err in report.errors:
        when = err.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"  {when}  {err.status:<8} {shown(err.to_email)}  {shown(err.last_reply)}")
