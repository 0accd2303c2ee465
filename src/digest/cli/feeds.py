"""``digest feeds``: the feeds polled on schedule: add, list, remove, and poll them now."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from digest.cli.audited import note, note_apart
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.errors import FeedError, InvalidInput
from digest.posts.discover import add_checked_feed
from digest.posts.feeds import list_feeds, remove_feed
from digest.posts.poll import PollResult, feed_urls, poll_all

_HOW = {
    "given": "given",
    "link": 'named by the page\'s <link rel="alternate">',
    "wordpress": "WordPress's usual place for it",
}


async def _poll_with_progress(app: AppContext) -> list[PollResult]:
    # A bar only where a person watches (a terminal) and only when there is more than one feed.
    total = len(feed_urls(app.db, app.settings))
    if total < 2 or not sys.stderr.isatty():
        return await poll_all(app.db, app.settings)
    console = Console(stderr=True)
    with Progress(
        TextColumn("polling feeds"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("poll", total=total)
        return await poll_all(app.db, app.settings, on_done=lambda _r: bar.advance(task))


@click.group()
def feeds() -> None:
    """Manage the feeds polled on schedule (also DIGEST_FEEDS)."""


@feeds.command()
@click.argument("url")
@pass_app
def add(app: AppContext, url: str) -> None:
    """Add a feed to poll: an RSS, Atom or WordPress REST URL, or a site's page naming its feed.

    The URL is fetched once; what is not a feed and leads to none is refused with the reason.
    """
    added = add_checked_feed(app.db, app.settings, url)
    found, feed = added.found, shown(added.found.url)  # the URL may come from a stranger's page
    if found.page is not None:
        click.echo(f"{shown(found.page)} is a web page; its feed is {feed} ({_HOW[found.via]})")
    if added.created:
        note_apart(app.db, "feed.add", found.url)
        click.echo(f"feed added: {feed} (digest feeds poll fetches it now)")
    else:
        click.echo(f"feed already present: {feed}")


@feeds.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the feeds, stored and from DIGEST_FEEDS, with their health."""
    configured = [u.strip() for u in app.settings.feeds if u.strip()]
    with app.db.transaction() as session:
        rows = {f.url: f for f in list_feeds(session)}
    items: list[dict[str, Any]] = []
    for url in dict.fromkeys([*rows, *configured]):
        row = rows.get(url)
        item: dict[str, Any] = {
            "url": url,
            "from": "settings" if url in configured else "store",
            "title": row.title if row else "",
            "last_ok_at": row.last_ok_at if row else None,
            "last_error": row.last_error if row else None,
            "failing_since": row.failing_since if row else None,
        }
        items.append(item)
    if as_json:
        echo_json(items)
        return
    if not items:
        click.echo("no feeds")
        return
    for item in items:
        if item["last_error"]:
            state = f"failing since {item['failing_since']:%Y-%m-%d %H:%M}: {item['last_error']}"
        elif item["last_ok_at"]:
            state = f"ok {item['last_ok_at']:%Y-%m-%d %H:%M}"
        else:
            state = "never polled"
        click.echo(f"{shown(item['url'])}\t{item['from']}\t{shown(state)}")


@feeds.command()
@click.argument("url")
@pass_app
def remove(app: AppContext, url: str) -> None:
    """Stop polling URL; its posts stay."""
    if url.strip() in (u.strip() for u in app.settings.feeds):
        raise InvalidInput(f"{url.strip()} comes from DIGEST_FEEDS; remove it there")
    with app.db.transaction() as session:
        remove_feed(session, url)
        note(session, "feed.remove", url.strip())
    click.echo(f"feed removed: {url.strip()}")


@feeds.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@pass_app
def poll(app: AppContext, as_json: bool) -> None:
    """Poll every feed now; exits non-zero when any feed failed."""
    results = asyncio.run(_poll_with_progress(app))
    changed = {key: sum(getattr(r, key) for r in results) for key in ("inserted", "updated")}
    if any(changed.values()):
        note_apart(app.db, "feed.poll", f"{len(results)} feeds", after=changed)
    if as_json:
        echo_json([r.__dict__ for r in results])
    elif not results:
        click.echo("no feeds (add one with digest feeds add URL, or set DIGEST_FEEDS)")
    for result in results:
        if not as_json:
            click.echo(shown(result.summary()), err=not result.ok)
        for warning in result.warnings:
            click.echo(f"warning: {shown(warning)}", err=True)
    failed = sum(not r.ok for r in results)
    if failed:
        raise FeedError(f"{failed} of {len(results)} feeds failed")
