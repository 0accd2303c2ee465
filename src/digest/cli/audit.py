"""``digest audit``: the newest changes made through the desk, the admin API and the CLI."""

from __future__ import annotations

import json

import click

from digest import audit as audit_log
from digest.cli.context import AppContext, echo_json, pass_app, shown


@click.command(name="audit")
@click.option(
    "--limit",
    type=click.IntRange(1, audit_log.MAX_LIMIT),
    default=50,
    show_default=True,
    help="how many entries, newest first",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON for programs")
@pass_app
def audit(app: AppContext, limit: int, as_json: bool) -> None:
    """Show the audit log: who changed what, when, from where, through which face."""
    with app.db.transaction() as session:
        rows = [audit_log.as_dict(e) for e in audit_log.recent(session, limit=limit)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("the audit log is empty")
    for row in rows:
        # Each stored value made printable alone: ``shown`` on the whole line would also fold
        # the two spaces that set the columns apart.
        who = shown(row["actor"]) + (f" from {shown(row['source'])}" if row["source"] else "")
        parts = [f"{row['at'][:19]}Z", row["via"], who, shown(row["action"])]
        if row["target"]:
            parts.append(shown(row["target"]))
        change = {k: row[k] for k in ("before", "after") if row[k] is not None}
        if change:
            parts.append(shown(json.dumps(change, ensure_ascii=False, sort_keys=True)))
        click.echo("  ".join(parts))
