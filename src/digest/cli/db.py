"""``digest db``: the store's schema."""

from __future__ import annotations

import click

from digest.cli.context import AppContext, pass_app
from digest.db import Database


@click.group()
def db() -> None:
    """Manage the store's schema."""


@db.command()
@pass_app
def upgrade(app: AppContext) -> None:
    """Apply every pending migration to the store."""
    database = Database.from_settings(app.settings)
    try:
        before, after = database.upgrade()
    finally:
        database.dispose()
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {after}")
