"""``digest stats``: what each mail did (sent, bounced, complaints, unsubscribes after it,
readers' and machines' clicks) and each newsletter's readers per day."""

from __future__ import annotations

import click

from digest import engagement, newsletters
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.clock import utcnow
from digest.engagement_report import DayReport, MailReport, totals

_ID = click.IntRange(1, 2**31 - 1)


@click.command()
@click.option("--newsletter", metavar="SLUG", help="only this newsletter's mail and readers")
@click.option("--edition", "edition_id", type=_ID, metavar="ID", help="one edition's report")
@click.option(
    "--announcement", "announcement_id", type=_ID, metavar="ID", help="one announcement's"
)
@click.option("--alert", "alert_id", type=_ID, metavar="ID", help="one alert's report")
@click.option(
    "--limit",
    type=click.IntRange(1, 500),
    default=20,
    show_default=True,
    help="how many of the latest mails (the totals are theirs)",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=14,
    show_default=True,
    help="how many days of readers joining and leaving",
)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def stats(
    app: AppContext,
    newsletter: str | None,
    edition_id: int | None,
    announcement_id: int | None,
    alert_id: int | None,
    limit: int,
    days: int,
    as_json: bool,
) -> None:
    """Show what each mail did (sent, bounced, complaints, unsubscribes, clicks), readers per day.

    Without --edition, --announcement or --alert: the latest mails (newest first), their
    totals, and each newsletter's readers who joined and left per day (UTC).
    """
    asked = [
        (kind, ident)
        for kind, ident in (
            ("edition", edition_id),
            ("announcement", announcement_id),
            ("alert", alert_id),
        )
        if ident is not None
    ]
    if len(asked) > 1:
        raise click.UsageError("name one of --edition, --announcement and --alert")
    now = utcnow()
    engagement.fold_pending_clicks(app.db, app.settings, now)
    with app.db.transaction() as session:
        if asked:
            kind, ident = asked[0]
            one = engagement.mail_report(session, kind, int(ident or 0))
            chosen = newsletters.get(session, newsletter) if newsletter else None
            if chosen is not None and one.newsletter != chosen.slug:
                raise click.UsageError(f"{kind} #{ident} is not of newsletter {chosen.slug!r}")
        else:
            found = engagement.overview(
                session, newsletter=newsletter, today=now.date(), limit=limit, span=days
            )
    if asked:
        if as_json:
            echo_json(one.as_dict())
        else:
            _mail_text(one)
        return
    if as_json:
        echo_json(found.as_dict())
        return
    _table(found.mails)
    _days(found.days)


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _table(mails: list[MailReport]) -> None:
    if not mails:
        click.echo("mail: none yet")
        return
    head = ("mail", "newsletter", "sent at (UTC)", "sent", "bounced", "compl", "unsub")
    tail = ("clicks", "unique", "rate", "machine")
    click.echo(
        f"{head[0]:<7} {head[1]:<12} {head[2]:<16} {head[3]:>7} {head[4]:>7} {head[5]:>5} "
        f"{head[6]:>5} {tail[0]:>6} {tail[1]:>6} {tail[2]:>6} {tail[3]:>7}  subject"
    )
    for m in mails:
        click.echo(
            f"{m.mail:<7} {shown(m.newsletter)[:12]:<12} {m.sent_at:%Y-%m-%d %H:%M} "
            f"{m.sent:>7} {m.bounced:>7} {m.complaints:>5} {m.unsubscribes:>5} "
            f"{m.human_clicks:>6} {m.unique_clicks:>6} {_rate(m.click_rate):>6} "
            f"{m.machine_clicks:>7}  {shown(m.subject)[:60]}"
        )
    t = totals(mails)
    click.echo(
        f"{'total':<7} {'':<12} {'':<16} {t['sent']:>7} {t['bounced']:>7} {t['complaints']:>5} "
        f"{t['unsubscribes']:>5} {t['human_clicks']:>6} {t['unique_clicks']:>6} "
        f"{_rate(t['click_rate']):>6} {t['machine_clicks']:>7}"
    )


def _days(rows: list[DayReport]) -> None:
    click.echo("")
    click.echo(
        f"{'newsletter':<16} {'day':<10} {'joined':>6} {'unsub':>6} {'bounced':>7} {'compl':>6}"
    )
    for d in rows:
        click.echo(
            f"{shown(d.newsletter)[:16]:<16} {d.day.isoformat():<10} {d.joined:>6} "
            f"{d.unsubscribes:>6} {d.bounces:>7} {d.complaints:>6}"
        )


def _mail_text(m: MailReport) -> None:
    click.echo(f"{m.kind} {m.id} ({m.mail}) of {shown(m.newsletter)}: {shown(m.subject)}")
    click.echo(f"sent at (UTC): {m.sent_at:%Y-%m-%d %H:%M}")
    click.echo(
        f"sent {m.sent}, waiting {m.waiting}, deferred {m.deferred}, failed {m.failed}, "
        f"bounced {m.bounced} (hard {m.bounced_hard}, soft {m.bounced_soft})"
    )
    click.echo(f"complaints {m.complaints}, unsubscribes after it {m.unsubscribes}")
    click.echo(
        f"clicks by readers {m.human_clicks}, unique {m.unique_clicks} "
        f"(click rate {_rate(m.click_rate)}), by machines {m.machine_clicks}"
    )
    if m.opens or m.proxy_opens:
        click.echo(f"opens {m.opens}, by image proxies {m.proxy_opens}")
    click.echo("top links:" if m.top_links else "top links: no reader clicked yet")
    for k in m.top_links:
        named = f"{shown(k.title)}  " if k.title else ""
        click.echo(f"  {k.human_clicks:>6}  {named}{shown(k.url)}")
