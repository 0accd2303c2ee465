"""``digest posts``: import posts from a feed or file, list them, add one, feature or unfeature,
alert (breaking news)."""

from __future__ import annotations

from typing import Any

import click

from digest import newsletters
from digest.audit_states import alert_fields, featured_state
from digest.cli.audited import note, note_apart
from digest.cli.context import AppContext, echo_json, newsletter_option, pass_app, shown
from digest.clock import utcnow
from digest.errors import InvalidInput
from digest.models import Post
from digest.posts import store
from digest.posts.entries import is_http_url
from digest.posts.featuring import is_featured, parse_until
from digest.posts.poll import import_source


def _as_dict(post: Post, featured: bool) -> dict[str, Any]:
    data = {name: getattr(post, name) for name in Post.model_fields}
    data["featured"] = featured
    return data


@click.group()
def posts() -> None:
    """Import, list, add and feature posts."""


@posts.command(name="import")
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def import_(app: AppContext, source: str, as_json: bool) -> None:
    """Import posts from SOURCE: an RSS/Atom/WordPress REST URL or a local file."""
    result = import_source(app.db, app.settings, source)
    if result.inserted or result.updated:
        changed = {"inserted": result.inserted, "updated": result.updated}
        note_apart(app.db, "post.import", source.strip(), after=changed)
    for warning in result.warnings:
        click.echo(f"warning: {shown(warning)}", err=True)
    if as_json:
        echo_json(result.__dict__)
    else:
        click.echo(shown(result.summary()))


@posts.command(name="list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--featured", "only_featured", is_flag=True, help="only posts featured now")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def list_(app: AppContext, limit: int, only_featured: bool, as_json: bool) -> None:
    """List posts, newest first; a star marks the featured ("Don't Miss") ones."""
    now = utcnow()
    categories = app.settings.featured_categories
    with app.db.transaction() as session:
        if only_featured:
            rows = store.featured_posts(session, categories, now, limit=limit)
        else:
            rows = store.list_posts(session, limit=limit)
    marked = [(p, is_featured(p, categories, now)) for p in rows]
    if as_json:
        echo_json([_as_dict(p, f) for p, f in marked])
        return
    if not marked:
        click.echo("no posts")
        return
    for p, featured in marked:
        star = "*" if featured else " "
        click.echo(
            f"{p.id}\t{star}\t{p.published_at:%Y-%m-%d %H:%M}\t{shown(p.title)}\t{shown(p.link)}"
        )


@posts.command()
@click.option("--title", required=True, help="the post's title")
@click.option("--url", required=True, help="the post's link (http or https)")
@click.option("--summary", default="", help="a short plain-text summary")
@click.option("--featured", is_flag=True, help="feature it under Don't Miss")
@pass_app
def add(app: AppContext, title: str, url: str, summary: str, featured: bool) -> None:
    """Add a post by hand (or update the one with the same link)."""
    from digest.posts.sanitize import plain_text, truncate_words

    clean_title = plain_text(title)[:1000]
    if not clean_title:
        raise InvalidInput("--title must not be empty")
    if not is_http_url(url):
        raise InvalidInput(f"--url must be an http(s) URL, not {url!r}")
    with app.db.transaction() as session:
        post, created = store.add_post(
            session,
            title=clean_title,
            url=url.strip(),
            summary=truncate_words(plain_text(summary)),
            featured=featured,
        )
        fields = {"title": post.title, "url": post.link} | featured_state(post)
        note(session, "post.add" if created else "post.edit", f"post {post.id}", after=fields)
    click.echo(f"post {post.id} {'added' if created else 'updated'}: {shown(post.title)}")


@posts.command()
@click.argument("post")
@click.option("--until", metavar="DATETIME", help="end of the feature: 2026-12-01T18:00 or 36h")
@click.option("--newsletter", metavar="SLUG", help="in this newsletter only (default: every one)")
@pass_app
def feature(app: AppContext, post: str, until: str | None, newsletter: str | None) -> None:
    """Feature POST (an id, guid or link) under Don't Miss, optionally until a time, in every
    newsletter or in one."""
    now = utcnow()
    end = parse_until(until or "", app.settings.timezone, now, name="--until")
    with app.db.transaction() as session:
        nid = int(newsletters.get(session, newsletter).id or 0) if newsletter else None
        before = featured_state(store.find_post(session, post))
        row = store.set_featured(session, post, True, until=end, newsletter_id=nid)
        note(session, "post.feature", f"post {row.id}", before=before, after=featured_state(row))
    suffix = f" until {end.isoformat(timespec='minutes')}" if end else ""
    where = f" in {shown(newsletter)}" if newsletter else ""
    click.echo(f"post {row.id} featured{where}{suffix}: {shown(row.title)}")


@posts.command()
@click.argument("post")
@click.option("--newsletter", metavar="SLUG", help="in this newsletter only")
@pass_app
def unfeature(app: AppContext, post: str, newsletter: str | None) -> None:
    """Stop featuring POST, even if the site marks it sticky or in a featured category; with
    --newsletter, take back a feature in that newsletter only."""
    with app.db.transaction() as session:
        nid = int(newsletters.get(session, newsletter).id or 0) if newsletter else None
        before = featured_state(store.find_post(session, post))
        row = store.set_featured(session, post, False, newsletter_id=nid)
        after = featured_state(row)
        note(session, "post.unfeature", f"post {row.id}", before=before, after=after)
    where = f" in {shown(newsletter)}" if newsletter else ""
    click.echo(f"post {row.id} not featured{where}: {shown(row.title)}")


@posts.command()
@click.argument("post")
@newsletter_option
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def alert(app: AppContext, post: str, newsletter: str | None, as_json: bool) -> None:
    """Queue POST (an id, guid or link) as a breaking-news alert for the readers who opted in;
    a worker or serve sends it. Each reader's budget and quiet hours may hold it back."""
    from digest.alerts import raise_alert

    report = raise_alert(app.db, app.settings, post, newsletter=newsletter, source="editor")
    note_apart(app.db, "post.alert", f"post {report.post_id}", after=alert_fields(report))
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(report.summary())
