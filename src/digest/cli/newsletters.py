"""``digest newsletters``: add, list, show, edit and archive the newsletters readers sign up to.

Newsletter 1 is made from the settings with the store; its unset fields keep following them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from digest import newsletters, subscribers
from digest.audit import changes
from digest.cli.audited import note
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.config import Settings
from digest.hygiene import hygiene_text, policy_of, why_not
from digest.hygiene_rules import DEFAULT_GRACE_DAYS
from digest.models import Newsletter
from digest.newsletter_config import configure


def _fields(f: Any) -> Any:
    """The options ``add`` and ``edit`` share: every field of a newsletter but its slug."""
    options = [
        click.option("--description", help="a line or two shown on the sign-up page"),
        click.option("--cadences", metavar="daily,weekly", help="the cadences it offers"),
        click.option("--default-cadence", help="the cadence a new reader gets (one offered)"),
        click.option(
            "--send-hour", type=click.IntRange(0, 23), help="local hour (unset: DIGEST_SEND_HOUR)"
        ),
        click.option("--weekly-day", help="the weekly edition's day (unset: DIGEST_WEEKLY_DAY)"),
        click.option("--topics", metavar="a,b", help="post categories it draws from (empty: all)"),
        click.option(
            "--featured-categories",
            metavar="a,b",
            help="categories whose posts it features (unset: DIGEST_FEATURED_CATEGORIES)",
        ),
        click.option(
            "--templates-dir", help="a folder of templates for it (empty: DIGEST_TEMPLATES_DIR)"
        ),
        click.option(
            "--from", "sender", metavar='"Name <address>"', help="From (empty: DIGEST_FROM)"
        ),
        click.option("--reply-to", metavar="ADDRESS", help="Reply-To (empty: none)"),
        click.option("--list-id", metavar="ID", help="List-Id, like news.example.com"),
        click.option(
            "--private/--public",
            "private",
            default=None,
            help="private: not offered on the public sign-up page",
        ),
        click.option("--position", type=int, help="its place in lists (lower first)"),
        *ALERT_OPTIONS,
        HYGIENE_OPTION,
        # Engagement
        click.option(
            "--utm/--no-utm",
            "utm",
            default=None,
            help="UTM parameters on its links to posts (utm_source=its slug, utm_medium=email)",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


#: The breaking-news lane's options; an unset one follows its DIGEST_ALERT_* setting.
ALERT_OPTIONS = [
    click.option(
        "--alerts/--no-alerts",
        "alerts",
        default=None,
        help="offer breaking-news alerts (readers' opt-ins are kept while off)",
    ),
    click.option("--alert-budget", type=int, metavar="N", help="most alerts a reader a day, 0-24"),
    click.option(
        "--quiet-hours",
        metavar="HH:MM-HH:MM|off",
        help="no alerts in these local hours (empty: DIGEST_QUIET_HOURS)",
    ),
    click.option(
        "--alert-expiry-hours",
        type=float,
        metavar="H",
        help="an alert not sent within H hours goes into the digest instead",
    ),
    click.option(
        "--alert-categories",
        metavar="a,b",
        help="feed categories that make a post breaking (unset: DIGEST_ALERT_CATEGORIES)",
    ),
]


#: List hygiene (off unless given; needs DIGEST_TRACKING=per-reader to do anything).
HYGIENE_OPTION = click.option(
    "--hygiene",
    metavar="N:M[:D]|off",
    help="ask readers sent N digests over M weeks without a click whether they still want it; "
    f"retire those who do not answer within D days (default {DEFAULT_GRACE_DAYS})",
)


def _warn_hygiene(settings: Settings, newsletter: Newsletter, hygiene: str | None) -> None:
    """Say so when hygiene was turned on where it cannot judge anyone yet."""
    reason = why_not(settings)
    if hygiene is not None and policy_of(newsletter) is not None and reason is not None:
        click.echo(f"warning: {reason}; it does nothing until then", err=True)


def _given(private: bool | None, **options: Any) -> dict[str, Any]:
    """The store's fields from the options given; None (not given) stays None."""
    return {**options, "public": None if private is None else not private}


# The order ``show`` prints a newsletter's fields in: who it is, then how it is sent.
_ORDER = (
    "id",
    "slug",
    "name",
    "description",
    "public",
    "archived",
    "cadences",
    "default_cadence",
    "send_hour",
    "weekly_day",
    "topics",
    "featured_categories",
    "templates_dir",
    "from",
    "reply_to",
    "list_id",
    "position",
    "alerts",
    "alert_budget",
    "quiet_hours",
    "alert_expiry_hours",
    "alert_categories",
    "hygiene",
    "utm",
    "former_slugs",
    "created_at",
    "updated_at",
    "archived_at",
)


def _as_dict(newsletter: Newsletter, settings: Settings, counts: dict[str, int]) -> dict[str, Any]:
    """A newsletter for ``list --json`` and ``show --json``: as stored, then as it is sent."""
    stored = newsletter.model_dump()
    stored["from"] = stored.pop("sender")
    stored["archived"] = newsletter.archived_at is not None
    stored["hygiene"] = hygiene_text(newsletter)
    config = configure(newsletter, settings)
    effective = asdict(config)
    # As they are written: "22:00-07:00", and hours like --alert-expiry-hours takes.
    effective["quiet_hours"] = config.quiet_hours.text
    effective["alert_expiry_hours"] = config.alert_expiry.total_seconds() / 3600
    del effective["alert_expiry"]
    return {
        **{key: stored[key] for key in _ORDER},
        "subscribers": counts,
        "effective": effective,
    }


@click.group(name="newsletters")
def newsletters_() -> None:
    """Manage newsletters: add, list, show, edit, archive."""


@newsletters_.command()
@click.argument("slug")
@click.option("--name", required=True, help="the newsletter's name, as readers see it")
@_fields
@pass_app
def add(app: AppContext, slug: str, name: str, private: bool | None, **options: Any) -> None:
    """Add a newsletter called SLUG (lower-case letters, digits, hyphens)."""
    with app.db.transaction() as session:
        made = newsletters.add(session, slug, name=name, **_given(private, **options))
        note(session, "newsletter.add", made.slug, after=changes(None, made.model_dump())[1])
        click.echo(f"newsletter added: {made.slug} ({shown(made.name)})")
        _warn_hygiene(app.settings, made, options.get("hygiene"))


@newsletters_.command(name="list")
@click.option("--archived", is_flag=True, help="archived newsletters too")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def list_(app: AppContext, archived: bool, as_json: bool) -> None:
    """List the newsletters in display order, with their subscribers by status."""
    with app.db.transaction() as session:
        rows = [
            _as_dict(n, app.settings, subscribers.count_by_status(session, int(n.id or 0)))
            for n in newsletters.listed(session, archived=archived)
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no newsletters")
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in row["subscribers"].items() if v) or "none"
        click.echo(
            f"{row['slug']}\t{shown(row['name'])}\t{'public' if row['public'] else 'private'}"
            f"{' archived' if row['archived'] else ''}\t{','.join(row['effective']['cadences'])}"
            f"\tsubscribers: {counts}"
        )


@newsletters_.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def show(app: AppContext, slug: str, as_json: bool) -> None:
    """Show one newsletter: its fields, what unset ones follow, its subscribers by status."""
    with app.db.transaction() as session:
        found = newsletters.get(session, slug)
        row = _as_dict(
            found, app.settings, subscribers.count_by_status(session, int(found.id or 0))
        )
    if as_json:
        echo_json(row)
        return
    effective = row.pop("effective")
    row["subscribers"] = ", ".join(f"{k} {v}" for k, v in row["subscribers"].items())
    for key, value in row.items():
        # An unset field shows what it comes to: the settings' value.
        setting = effective.get("sender" if key == "from" else key)
        follows = value in (None, "") and setting not in (None, "")
        extra = f" (from the settings: {shown(_text(setting))})" if follows else ""
        click.echo(f"{key:>20}: {shown(_text(value))}{extra}")


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


@newsletters_.command()
@click.argument("slug")
@click.option("--slug", "new_slug", metavar="NEW", help="a new slug (the old one keeps working)")
@click.option("--name", help="the newsletter's name, as readers see it")
@_fields
@pass_app
def edit(
    app: AppContext,
    slug: str,
    new_slug: str | None,
    name: str | None,
    private: bool | None,
    **options: Any,
) -> None:
    """Change a newsletter; only the options given change. An empty value (--from "") makes
    a field follow the settings again."""
    with app.db.transaction() as session:
        found = newsletters.get(session, slug)
        before, was = found.slug, found.model_dump()
        newsletters.edit(session, found, slug=new_slug, name=name, **_given(private, **options))
        old, new = changes(was, found.model_dump())
        if new:
            note(session, "newsletter.edit", before, before=old, after=new)
        renamed = f" (was {before}, which keeps working)" if found.slug != before else ""
        click.echo(f"newsletter changed: {found.slug}{renamed}")
        _warn_hygiene(app.settings, found, options.get("hygiene"))


@newsletters_.command()
@click.argument("slug")
@pass_app
def archive(app: AppContext, slug: str) -> None:
    """Archive a newsletter: no more editions or sign-ups; its archive pages stay."""
    with app.db.transaction() as session:
        found = newsletters.archive(session, newsletters.get(session, slug))
        note(session, "newsletter.archive", found.slug)
        click.echo(f"newsletter archived: {found.slug}")
