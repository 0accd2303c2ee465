"""``digest settings``: every setting, its effective value (secrets redacted) and its help.

It reads the settings as every command does, so a bad one is the same one-line error (exit 78),
but it needs no store and makes no secret key just to say that none is set.
"""

from __future__ import annotations

from dataclasses import asdict

import click

from digest.cli.context import echo_json
from digest.config import load_settings
from digest.settings_report import Value, describe, store_location


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
def settings(as_json: bool) -> None:
    """Show every DIGEST_* setting: its effective value, its default and what it does."""
    loaded = load_settings(make_secret=False)
    shown = describe(loaded)
    if as_json:
        echo_json([asdict(item) for item in shown])
        return
    for item in shown:
        click.echo(f"{item.name}={_text(item.value)}")
        click.echo(f"    {item.help}")
        if item.name == "DIGEST_DATABASE_URL":
            click.echo(f"    in use: {store_location(loaded.database_url)}")
        if item.value != item.default:
            click.echo(f"    default: {_text(item.default)}")


def _text(value: Value) -> str:
    """A value as it would be written in the environment; "(unset)" for none."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(value) or "(none)"
    return str(value)
