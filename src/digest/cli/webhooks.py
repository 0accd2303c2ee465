"""``digest webhooks``: the receivers of signed events: add, list, remove, and test one."""

from __future__ import annotations

import click

from digest import webhooks as store
from digest.cli.audited import note
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.errors import TestNotSent
from digest.webhook_rules import audited_url, redacted_url


@click.group()
def webhooks() -> None:
    """Signed event POSTs to other systems: add, list, remove, test."""


@webhooks.command()
@click.argument("url")
@click.option(
    "--events", required=True, metavar="E1,E2", help="the events it takes, comma-separated"
)
@click.option("--json", "as_json", is_flag=True, help='print {"id": ..., "secret": "..."}')
@pass_app
def add(app: AppContext, url: str, events: str, as_json: bool) -> None:
    """Add a webhook; prints its id and signing secret (shown this once: keep it)."""
    with app.db.transaction() as session:
        row, secret = store.add(session, app.settings, url, events)
        # Neither the secret nor the URL's credentials go in the log: whoever reads it could
        # forge events or call the receiver.
        after = {"url": audited_url(row.url), "events": list(row.events)}
        note(session, "webhook.add", f"webhook #{row.id}", after=after)
    if not store.resolves(row.url):
        click.echo(
            "note: its host does not resolve from here now; every delivery checks the address "
            "it reaches",
            err=True,
        )
    if as_json:
        echo_json({"id": row.id, "secret": secret})
        return
    click.echo(f"webhook #{row.id}: {shown(redacted_url(row.url))} ({', '.join(row.events)})")
    click.echo(f"secret: {secret}")
    click.echo("The secret is shown this once; receivers verify Digest-Signature with it.")


@webhooks.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the webhooks with their queues (pending, delivered, dead); never their secrets,
    nor the user, password or query values in their URLs."""
    with app.db.transaction() as session:
        found = store.listed(session)
    if as_json:
        echo_json([w.__dict__ | {"url": redacted_url(w.url)} for w in found])
        return
    if not found:
        click.echo("no webhooks (add one with `digest webhooks add URL --events ...`)")
    for w in found:
        q = w.queue
        click.echo(
            f"#{w.id}  {shown(redacted_url(w.url))}  {','.join(w.events)}  pending {q['pending']}, "
            f"delivered {q['delivered']}, dead {q['dead']}"
        )


@webhooks.command()
@click.argument("webhook_id", metavar="ID", type=int)
@pass_app
def remove(app: AppContext, webhook_id: int) -> None:
    """Remove a webhook; its queued events are dropped."""
    with app.db.transaction() as session:
        row = store.remove(session, webhook_id)
        before = {"url": audited_url(row.url), "events": list(row.events)}
        note(session, "webhook.remove", f"webhook #{webhook_id}", before=before)
    click.echo(f"removed webhook #{webhook_id}")


@webhooks.command()
@click.argument("webhook_id", metavar="ID", type=int)
@pass_app
def test(app: AppContext, webhook_id: int) -> None:
    """POST a signed ``webhook.test`` event now (not queued) and print the receiver's answer."""
    with app.db.transaction() as session:
        row = store.get(session, webhook_id)
    answer = store.run_test(app.settings, row)
    if not answer.ok:
        raise TestNotSent(f"webhook #{webhook_id}: {answer.line}")
    click.echo(f"webhook #{webhook_id}: {answer.line}")
