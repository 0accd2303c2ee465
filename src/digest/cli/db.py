"""``digest db``: the store's schema."""

from __future__ import annotations

import click

from digest.cli.context import AppContext, pass_app
from digest.settings_report import store_location


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Create the store, or apply every pending migration to it."""
    before, after = app.create_db()
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")
    click.echo(f"store: {store_location(app.settings.database_url)}")
