"""``digest preview``: the digest exactly as one subscriber would get it now, sending nothing."""

from __future__ import annotations

import email
import email.policy
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from digest import links
from digest.cli.context import AppContext, pass_app
from digest.clock import utcnow
from digest.compose.render import DigestRenderer
from digest.errors import TemplateProblem
from digest.mail.message import Personal, Sender, assemble, new_message_id
from digest.planning import selection_for
from digest.subscribers import get

SAMPLE_ADDRESS = "reader@example.com"


@click.command()
@click.option("--to", "to", metavar="EMAIL", help="a subscriber (default: a new reader)")
@click.option("--cadence", type=click.Choice(["daily", "weekly"], case_sensitive=False))
@click.option(
    "--format", "fmt", type=click.Choice(["html", "text", "eml"]), default="html", show_default=True
)
@click.option("--output", type=click.Path(path_type=Path), help="write to FILE, not stdout")
@pass_app
def preview(
    app: AppContext, to: str | None, cadence: str | None, fmt: str, output: Path | None
) -> None:
    """Show the digest a subscriber would get now (the same selection and history as a send)."""
    settings, now = app.settings, utcnow()
    with app.db.transaction() as session:
        subscriber = get(session, to) if to else None
        selection = selection_for(
            session, settings, now=now, subscriber=subscriber, cadence=cadence
        )
    if selection.skip:
        who = subscriber.email if subscriber else "a new subscriber"
        click.echo(f"no digest for {who} now: {selection.reason}", err=True)
        return
    zone = subscriber.timezone if subscriber else settings.timezone
    body = DigestRenderer(settings).render_body(
        selection,
        cadence=cadence or (subscriber.cadence if subscriber else "daily"),
        local_date=now.astimezone(ZoneInfo(zone)).date(),
    )
    sender = Sender.from_settings(settings)
    if subscriber is not None and subscriber.id is not None:
        address, name = subscriber.email, subscriber.name
        unsub = links.unsubscribe_url(settings, subscriber.id, subscriber.email)
        prefs = links.preferences_url(settings, subscriber.id, subscriber.email)
    else:
        address, name = SAMPLE_ADDRESS, "Reader"
        unsub = prefs = settings.base_url + "/"
    personal = Personal(
        to_email=address,
        to_name=name,
        message_id=new_message_id(sender.domain),
        date=now,
        unsubscribe_url=unsub,
        preferences_url=prefs,
    )
    raw = assemble(body.subject, body.text, body.html, personal, sender)
    data = raw if fmt == "eml" else _part(raw, fmt).encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output} ({len(selection.post_ids)} posts, {fmt})", err=True)


def _part(raw: bytes, fmt: str) -> str:
    """The text or HTML part of the assembled message: exactly what a mail client shows."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("html",) if fmt == "html" else ("plain",))
    if part is None:
        raise TemplateProblem(f"the rendered digest has no {fmt} part")
    return str(part.get_content())  # type: ignore[attr-defined]
