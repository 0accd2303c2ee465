"""``digest send``: make the edition now and deliver it; ``--dry-run``; ``--test ADDRESS``."""

from __future__ import annotations

import click
import sqlalchemy as sa

from digest import editions, links
from digest.addresses import normalize_email
from digest.cli.context import AppContext, echo_json, pass_app
from digest.cli.sending import deliver_now, describe
from digest.clock import utcnow
from digest.compose.render import DigestRenderer
from digest.delivery import outbox
from digest.mail.message import PREFERENCES_URL, UNSUBSCRIBE_URL, Sender
from digest.models import Subscriber
from digest.states import DeliveryKind
from digest.subscribers import find

CADENCES = click.Choice(["daily", "weekly"], case_sensitive=False)


@click.command()
@click.option("--cadence", type=CADENCES, default="daily", show_default=True)
@click.option("--dry-run", is_flag=True, help="say who would get which posts; send nothing")
@click.option("--test", "test_address", metavar="ADDRESS", help="send one copy, marked as a test")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def send(
    app: AppContext, cadence: str, dry_run: bool, test_address: str | None, as_json: bool
) -> None:
    """Make the edition now for every active subscriber of CADENCE and deliver it.

    Each subscriber still gets at most one digest per period (local day or ISO week): running
    this twice, or while the scheduler runs, sends nothing twice.
    """
    settings, db, now = app.settings, app.db, utcnow()
    if test_address:
        _send_test(app, cadence, normalize_email(test_address), as_json)
        return
    report = editions.make_edition(
        db, settings, cadence=cadence, now=now, due_only=False, dry_run=dry_run
    )
    if report is None:
        _say(
            as_json,
            {"edition": None, "recipients": 0},
            f"no active {cadence} subscriber is without this period's digest; nothing to send",
        )
        return
    if dry_run:
        _print_plan(app, report, as_json)
        return
    delivered = deliver_now(settings, db, quiet=as_json)
    _say(
        as_json,
        {
            "edition": report.key,
            "recipients": report.recipients,
            "skipped": report.skipped,
            "bodies": report.bodies,
            "delivery": delivered.__dict__,
        },
        f"edition {report.key}: {report.recipients} digests queued ({report.bodies} distinct), "
        f"{report.skipped} skipped with nothing new\n{describe(delivered)}",
    )


def _say(as_json: bool, data: dict[str, object], text: str) -> None:
    if as_json:
        echo_json(data)
    else:
        click.echo(text)


def _print_plan(app: AppContext, report: editions.EditionReport, as_json: bool) -> None:
    plans = []
    with app.db.transaction() as session:
        for group in report.groups:
            emails = (
                session.execute(
                    sa.select(Subscriber.__table__.c.email)
                    .where(group.where)  # type: ignore[attr-defined]
                    .order_by(Subscriber.__table__.c.email)  # type: ignore[attr-defined]
                )
                .scalars()
                .all()
            )
            sel = group.selection
            plans.append(
                {
                    "subscribers": list(emails),
                    "timezone": group.timezone,
                    "period": group.period.key,
                    "skip": sel.skip,
                    "reason": sel.reason,
                    "dont_miss": [p.title for p in sel.featured],
                    "latest": [p.title for p in sel.latest],
                }
            )
    if as_json:
        echo_json(
            {
                "edition": report.key,
                "recipients": report.recipients,
                "skipped": report.skipped,
                "groups": plans,
            }
        )
        return
    click.echo(
        f"dry run of {report.key}: {report.recipients} would get a digest, "
        f"{report.skipped} would be skipped; nothing was written or sent"
    )
    for plan in plans:
        who = ", ".join(plan["subscribers"][:10])
        more = len(plan["subscribers"]) - 10
        click.echo(f"\n{who}{f' and {more} more' if more > 0 else ''} ({plan['timezone']}):")
        if plan["skip"]:
            click.echo(f"  skipped: {plan['reason']}")
            continue
        for title in plan["dont_miss"]:
            click.echo(f"  Don't Miss: {title}")
        for title in plan["latest"]:
            click.echo(f"  Latest:     {title}")


def _send_test(app: AppContext, cadence: str, address: str, as_json: bool) -> None:
    """One copy of what a new subscriber of every topic would get, marked as a test."""
    settings, db, now = app.settings, app.db, utcnow()
    with db.transaction() as session:
        selection = editions.selection_for(session, settings, now=now, cadence=cadence)
        if selection.skip:
            raise click.ClickException(f"no test sent: {selection.reason} for a {cadence} digest")
        body = DigestRenderer(settings).render_body(
            selection, cadence=cadence, local_date=now.astimezone().date()
        )
        subscriber = find(session, address)
        if subscriber is not None and subscriber.id is not None:
            unsub = links.unsubscribe_url(settings, subscriber.id, subscriber.email)
            prefs = links.preferences_url(settings, subscriber.id, subscriber.email)
        else:
            unsub = prefs = settings.base_url + "/"
        fill = {UNSUBSCRIBE_URL: unsub, PREFERENCES_URL: prefs}
        text, html = body.text, body.html
        for placeholder, value in fill.items():
            text, html = text.replace(placeholder, value), html.replace(placeholder, value)
        outbox.enqueue_transactional(
            session,
            kind=DeliveryKind.TEST.value,
            to_email=address,
            subscriber_id=subscriber.id if subscriber else None,
            subject=body.subject,
            text=text,
            html=html,
            domain=Sender.from_settings(settings).domain,
        )
    delivered = deliver_now(settings, db, quiet=True)
    _say(
        as_json,
        {"test": address, "posts": len(selection.post_ids), "delivery": delivered.__dict__},
        f"test copy of the {cadence} digest ({len(selection.post_ids)} posts) to {address}: "
        f"{describe(delivered)}",
    )
