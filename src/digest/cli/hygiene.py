"""``digest hygiene``: one pass of list hygiene now (what ``serve`` runs hourly), or with
``--dry-run`` who it would ask "still want this?" and who it would retire."""

from __future__ import annotations

import click

from digest import hygiene as hygiene_store
from digest.cli.audited import note_apart
from digest.cli.context import AppContext, echo_json, pass_app, shown


@click.command()
@click.option("--newsletter", metavar="SLUG", help="only this newsletter (default: every one on)")
@click.option("--dry-run", is_flag=True, help="list who it would ask and retire; change nothing")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def hygiene(app: AppContext, newsletter: str | None, dry_run: bool, as_json: bool) -> None:
    """Ask silent readers if they still want the newsletter; retire the unanswered.

    Only newsletters with --hygiene N:M[:D], and only with DIGEST_TRACKING=per-reader.
    """
    reports = hygiene_store.run(app.db, app.settings, slug=newsletter, dry_run=dry_run)
    for report in reports:
        if not dry_run and (report.asked or report.retired or report.answered):
            # Counts only: an address in the log would outlive that person's erasure.
            counts = {k: len(v) for k, v in report.as_dict().items() if isinstance(v, list)}
            note_apart(app.db, "hygiene.run", report.newsletter, after=counts)
    if as_json:
        echo_json([r.as_dict() for r in reports])
        return
    if not reports:
        click.echo("list hygiene is off for every newsletter (newsletters edit SLUG --hygiene)")
    verb = ("would ask", "would retire") if dry_run else ("asked", "retired")
    for report in reports:
        if report.notice:
            click.echo(f"{report.newsletter}: {report.notice}")
        if dry_run:
            for label, people in zip(verb, (report.asked, report.retired), strict=True):
                for email in people:
                    click.echo(f"  {label}: {shown(email)}")
        click.echo(
            f"{report.newsletter} ({report.policy}){' dry run' if dry_run else ''}: "
            f"{verb[0]} {len(report.asked)}, {verb[1]} {len(report.retired)}, "
            f"answered {len(report.answered)}, waiting for an answer {report.waiting}"
            + (f", questions dropped {len(report.dropped)}" if report.dropped else "")
        )
