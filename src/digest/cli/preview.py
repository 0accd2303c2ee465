"""``digest preview``: the digest exactly as one subscriber would get it now, sending nothing."""

from __future__ import annotations

import email
import email.policy
import sys
from pathlib import Path

import click

from digest.cli.context import AppContext, newsletter_option, pass_app, shown_lines
from digest.clock import utcnow
from digest.errors import TemplateProblem
from digest.previews import preview as make_preview


@click.command()
@click.option("--to", "to", metavar="EMAIL", help="a subscriber (default: a new reader)")
@click.option("--cadence", type=click.Choice(["daily", "weekly"], case_sensitive=False))
@click.option(
    "--format", "fmt", type=click.Choice(["html", "text", "eml"]), default="html", show_default=True
)
@click.option("--output", type=click.Path(path_type=Path), help="write to FILE, not stdout")
@newsletter_option
@pass_app
def preview(
    app: AppContext,
    to: str | None,
    cadence: str | None,
    fmt: str,
    output: Path | None,
    newsletter: str | None,
) -> None:
    """Show the digest a subscriber would get now (the same selection and history as a send)."""
    shown = make_preview(
        app.db, app.settings, address=to, cadence=cadence, now=utcnow(), newsletter=newsletter
    )
    if shown.message is None:
        click.echo(f"no digest for {shown.who} now: {shown.reason}", err=True)
        return
    data = shown.message if fmt == "eml" else message_part(shown.message, fmt).encode("utf-8")
    if output is None:
        if sys.stdout.isatty():  # a person reads it: the feed's text must not drive the terminal
            data = shown_lines(data.decode("utf-8", "replace")).encode("utf-8")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output} ({shown.posts} posts, {fmt})", err=True)


def message_part(raw: bytes, fmt: str) -> str:
    """The text or HTML part of the assembled message: exactly what a mail client shows."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("html",) if fmt == "html" else ("plain",))
    if part is None:
        raise TemplateProblem(f"the rendered digest has no {fmt} part")
    return str(part.get_content())  # type: ignore[attr-defined]
