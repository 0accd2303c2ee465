"""``digest demo``: the whole flow on the embedded defaults, for a first look.

It runs in a store and a file outbox of its own under ``DIGEST_VAR_DIR/demo`` (reused by the
next run), never in the configured store unless told to with ``--configured-store``, and then
only in one that has no subscribers but the demo's samples.
"""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.context import AppContext, pass_app
from digest.cli.sending import deliver_now, describe
from digest.demo import (
    SAMPLE_SUBSCRIBERS,
    check_store_for_demo,
    demo_folder,
    demo_settings,
    run_demo,
)
from digest.errors import SettingsError
from digest.settings_report import store_location


@click.command()
@click.option(
    "--configured-store",
    is_flag=True,
    help="run in DIGEST_DATABASE_URL and DIGEST_SMTP_URL (a file: outbox) instead of a store "
    "of its own; refused when that store has subscribers besides the demo's",
)
@pass_app
def demo(app: AppContext, configured_store: bool) -> None:
    """Run digest end to end on this machine: sample posts, subscribers, digests as .eml files."""
    folder = demo_folder(app.settings)
    if configured_store:
        _demo(app, folder, own=False)
        return
    with AppContext(demo_settings(app.settings)) as own:
        _demo(own, folder, own=True)


def _demo(app: AppContext, folder: Path, *, own: bool) -> None:
    settings = app.settings
    outbox_dir = settings.file_outbox
    if outbox_dir is None:
        raise SettingsError(
            "DIGEST_SMTP_URL: digest demo writes mail to files; set it to file:FOLDER or run "
            "the demo without --configured-store"
        )
    app.create_db()
    db = app.db
    if not own:
        check_store_for_demo(db)
    where = store_location(db.url)
    click.echo(f"store: {where}   mail: .eml files in {outbox_dir}/ (nothing leaves this machine)")
    result = run_demo(db, settings, folder)
    click.echo(f"posts: {result.posts} from the sample feed of a news site")
    click.echo("subscribers:")
    for email, _, cadence, topics, zone in SAMPLE_SUBSCRIBERS:
        click.echo(f"  {email:<20} {cadence:<7} {zone:<18} {topics or 'every topic'}")
    for report in result.editions:
        click.echo(
            f"edition {report.key}: {report.recipients} digests, "
            f"{report.bodies} distinct bodies, {report.skipped} skipped"
        )
    if result.recipients == 0:
        click.echo(
            "every sample subscriber already has this period's digest (one per local day "
            f"or week); remove {folder}/ to start over"
        )
    click.echo(f"delivery: {describe(deliver_now(settings, db))}")
    files = sorted(outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    click.echo(f"\n{len(files)} message(s) in {outbox_dir}/, newest: {files[-1] if files else '-'}")
    store_env = f"DIGEST_DATABASE_URL=sqlite:///{where} " if own else ""
    click.echo(
        "open an .eml file with any mail client (or: less it), or see one subscriber's digest:\n"
        f"  {store_env}.venv/bin/digest preview --to kenji@example.com --format html "
        "--output kenji.html\n"
        + (
            "the demo keeps to a store of its own; to start yours and subscribe through the page:\n"
            if own
            else "subscribe through the page:\n"
        )
        + "  .venv/bin/digest serve     then open http://127.0.0.1:8000/"
    )
