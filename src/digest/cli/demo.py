"""``digest demo``: the whole flow on the embedded defaults, for a first look.

Imports the shipped sample feed, adds a few sample subscribers in different timezones and
cadences, makes the editions, delivers them to the file outbox, and says where to look next.
Running it again changes nothing that is already there and sends nobody a second digest for
the same period.
"""

from __future__ import annotations

import click

from digest import editions
from digest import subscribers as store
from digest.cli.context import AppContext, pass_app
from digest.cli.sending import deliver_now, describe
from digest.clock import utcnow
from digest.errors import SettingsError
from digest.posts.poll import import_file
from digest.posts.samples import load_sample_feed

SAMPLE_SUBSCRIBERS = (
    ("ana@example.com", "Ana Costa", "daily", "", "Europe/Lisbon"),
    ("kenji@example.com", "Kenji Sato", "daily", "Business,Technology", "Asia/Tokyo"),
    ("maria@example.com", "María López", "weekly", "World,Politics", "America/New_York"),
    ("sam@example.com", "Sam Taylor", "daily", "Sports", "Australia/Sydney"),
)


@click.command()
@pass_app
def demo(app: AppContext) -> None:
    """Run digest end to end on this machine: sample posts, subscribers, digests as .eml files."""
    settings = app.settings
    outbox_dir = settings.file_outbox
    if outbox_dir is None:
        raise SettingsError(
            "digest demo writes mail to files; unset DIGEST_SMTP_URL or set it to file:FOLDER"
        )
    db = app.db
    click.echo(f"store: {db.url}   mail: .eml files in {outbox_dir}/ (nothing leaves this machine)")

    feed = settings.var_dir / "sample_feed.xml"
    feed.parent.mkdir(parents=True, exist_ok=True)
    feed.write_bytes(load_sample_feed(utcnow()))
    result = import_file(db, settings, feed)
    click.echo(f"posts: {result.summary()} from the sample feed of a news site")

    with db.transaction() as session:
        for email, name, cadence, topics, zone in SAMPLE_SUBSCRIBERS:
            store.add(
                session,
                email,
                name=name,
                cadence=cadence,
                topics=topics,
                timezone=zone,
                confirmed=True,
            )
    click.echo("subscribers:")
    for email, _, cadence, topics, zone in SAMPLE_SUBSCRIBERS:
        click.echo(f"  {email:<20} {cadence:<7} {zone:<18} {topics or 'every topic'}")

    # The edition's time comes after the import: a post first seen later than the edition
    # belongs to the next one.
    now, made = utcnow(), 0
    for cadence in ("daily", "weekly"):
        report = editions.make_edition(db, settings, cadence=cadence, now=now, due_only=False)
        if report is not None:
            made += report.recipients
            click.echo(
                f"edition {report.key}: {report.recipients} digests, "
                f"{report.bodies} distinct bodies, {report.skipped} skipped"
            )
    if made == 0:
        click.echo(
            "every sample subscriber already has this period's digest (one per local day "
            "or week); remove var/ to start over"
        )
    click.echo(f"delivery: {describe(deliver_now(settings, db))}")
    files = sorted(outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    click.echo(f"\n{len(files)} message(s) in {outbox_dir}/, newest: {files[-1] if files else '-'}")
    click.echo(
        "open an .eml file with any mail client (or: less it), or see one subscriber's digest:\n"
        "  .venv/bin/digest preview --to kenji@example.com --format html --output kenji.html\n"
        "subscribe through the page:\n"
        "  .venv/bin/digest serve     then open http://127.0.0.1:8000/"
    )
