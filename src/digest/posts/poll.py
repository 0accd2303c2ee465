"""Importing and polling: a source's bytes fetched or read, parsed, and stored in one transaction.

``poll_all`` is what the scheduler and ``digest feeds poll`` call: every feed of the store and
of ``DIGEST_FEEDS``, concurrently, with conditional GETs; one bad feed is recorded on its row and
logged, and never stops the others. ``import_source`` is the one-off ``digest posts import``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.errors import DigestError, FeedError, ImportFileError
from digest.posts import feeds, store
from digest.posts.entries import ParsedFeed
from digest.posts.fetch import AddressPolicy, FetchResult, fetch_feed
from digest.posts.parse import parse_source
from digest.posts.wordpress import with_embed

log = logging.getLogger(__name__)
# The library habit: without it, an unconfigured process prints every warning a second time
# through logging's last-resort handler, next to the CLI's own one-line report.
log.addHandler(logging.NullHandler())
CONCURRENT_POLLS = 8


@dataclass
class PollResult:
    """What one feed's poll or import did."""

    url: str
    ok: bool = True
    not_modified: bool = False
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a person: what happened to this source."""
        if not self.ok:
            return f"failed: {self.error}"
        if self.not_modified:
            return f"{self.url}: not modified since last poll"
        line = (
            f"{self.url}: {self.inserted} new, {self.updated} updated, {self.unchanged} unchanged"
        )
        if self.skipped:
            line += f", {self.skipped} skipped (no title or link)"
        return line


def policy_for(settings: Settings) -> AddressPolicy:
    """The address policy the settings ask for."""
    return AddressPolicy(allow_private=settings.allow_private_feeds)


def _store(
    db: Database,
    url: str,
    parsed: ParsedFeed,
    fetched: FetchResult | None,
    now: datetime,
    *,
    record: bool,
) -> PollResult:
    # One transaction: all of the feed's entries and its health row land together, or none.
    with db.transaction() as session:
        counts = store.upsert_posts(session, parsed.posts, source=url, now=now)
        if record:
            _record_ok(session, url, parsed, fetched, now)
    return _result(url, counts, parsed)


def _record_ok(
    session: Session, url: str, parsed: ParsedFeed, fetched: FetchResult | None, now: datetime
) -> None:
    feeds.record_success(
        session,
        url,
        now=now,
        title=parsed.title,
        etag=fetched.etag if fetched else None,
        last_modified=fetched.last_modified if fetched else None,
    )


def _result(url: str, counts: store.UpsertCounts, parsed: ParsedFeed) -> PollResult:
    return PollResult(
        url=url,
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        skipped=parsed.skipped,
        warnings=parsed.warnings,
    )


def _parse_and_store(
    db: Database, url: str, fetched: FetchResult, now: datetime, *, record: bool
) -> PollResult:
    parsed = parse_source(
        fetched.body, source=url, content_type=fetched.content_type, base_url=fetched.url
    )
    return _store(db, url, parsed, fetched, now, record=record)


async def fetch_source(
    settings: Settings, url: str, *, etag: str | None = None, last_modified: str | None = None
) -> FetchResult:
    """GET a feed URL under the settings' guard and caps (WordPress's with its embeds)."""
    return await fetch_feed(
        with_embed(url),
        timeout=settings.feed_timeout,
        max_bytes=settings.feed_max_bytes,
        policy=policy_for(settings),
        etag=etag,
        last_modified=last_modified,
    )


async def import_url(db: Database, settings: Settings, url: str) -> PollResult:
    """Fetch a URL once (no validators, not added to the feeds) and store its posts."""
    fetched = await fetch_source(settings, url)
    return await asyncio.to_thread(_parse_and_store, db, url, fetched, utcnow(), record=False)


def import_file(db: Database, settings: Settings, path: Path) -> PollResult:
    """Read a local RSS, Atom or WordPress JSON file and store its posts."""
    try:
        with path.open("rb") as fh:
            body = fh.read(settings.feed_max_bytes + 1)
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(body) > settings.feed_max_bytes:
        raise FeedError(f"{path}: larger than the {settings.feed_max_bytes:,} bytes allowed")
    parsed = parse_source(body, source=str(path))
    return _store(db, str(path), parsed, None, utcnow(), record=False)


def import_source(db: Database, settings: Settings, source: str) -> PollResult:
    """``digest posts import``: an http(s) URL or a file path; FeedError when it fails."""
    if source.lower().startswith(("http://", "https://")):
        return asyncio.run(import_url(db, settings, source))
    if "://" in source:
        raise FeedError(f"{source}: only http(s) URLs and local files can be imported")
    return import_file(db, settings, Path(source))


def _validators(db: Database, url: str) -> tuple[str | None, str | None]:
    with db.transaction() as session:
        row = feeds.get_feed(session, url)
        return (row.etag, row.last_modified) if row else (None, None)


def _record_not_modified(db: Database, url: str, now: datetime) -> None:
    with db.transaction() as session:
        feeds.record_success(session, url, now=now, not_modified=True)


def _record_failure(db: Database, url: str, now: datetime, error: str) -> None:
    try:
        with db.transaction() as session:
            feeds.record_failure(session, url, now=now, error=error)
    except DigestError as exc:
        log.error("cannot record the failure of feed %s: %s", url, exc)


async def poll_feed(db: Database, settings: Settings, url: str) -> PollResult:
    """Poll one feed with a conditional GET; never raises, the outcome is on the feed row."""
    now = utcnow()
    # Store work runs in threads: the web app's event loop must not wait on the database.
    try:
        etag, modified = await asyncio.to_thread(_validators, db, url)
        fetched = await fetch_source(settings, url, etag=etag, last_modified=modified)
        if fetched.not_modified:
            await asyncio.to_thread(_record_not_modified, db, url, now)
            return PollResult(url=url, not_modified=True)
        result = await asyncio.to_thread(_parse_and_store, db, url, fetched, now, record=True)
    except DigestError as exc:
        error = str(exc)
        log.warning("feed poll failed: %s", error)
    except Exception as exc:  # the scheduler must never die because of one odd feed
        error = f"{url}: unexpected error ({type(exc).__name__}: {exc})"
        log.exception("feed poll failed unexpectedly: %s", url)
    else:
        for warning in result.warnings:
            log.warning("feed %s: %s", url, warning)
        log.info("feed polled: %s", result.summary())
        return result
    await asyncio.to_thread(_record_failure, db, url, now, error)
    return PollResult(url=url, ok=False, error=error)


def poll_feed_in(session: Session, settings: Settings, url: str, now: datetime) -> PollResult:
    """Poll one feed now within the caller's transaction (the desk's "poll now", whose request
    already holds one); never raises for the feed's own faults, which go on its row. Not for a
    running event loop: it runs the fetch in one of its own."""
    row = feeds.get_feed(session, url)
    etag, modified = (row.etag, row.last_modified) if row else (None, None)
    try:
        fetched = asyncio.run(fetch_source(settings, url, etag=etag, last_modified=modified))
        if fetched.not_modified:
            feeds.record_success(session, url, now=now, not_modified=True)
            return PollResult(url=url, not_modified=True)
        parsed = parse_source(
            fetched.body, source=url, content_type=fetched.content_type, base_url=fetched.url
        )
        with session.begin_nested():  # a store fault undoes the posts, not the failure note
            counts = store.upsert_posts(session, parsed.posts, source=url, now=now)
    except FeedError as exc:
        feeds.record_failure(session, url, now=now, error=str(exc))
        return PollResult(url=url, ok=False, error=str(exc))
    _record_ok(session, url, parsed, fetched, now)
    return _result(url, counts, parsed)


def feed_urls(db: Database, settings: Settings) -> list[str]:
    """Every feed to poll: the stored ones, then those of DIGEST_FEEDS not stored yet."""
    with db.transaction() as session:
        urls = [f.url for f in feeds.list_feeds(session)]
    return list(dict.fromkeys([*urls, *(u.strip() for u in settings.feeds if u.strip())]))


async def poll_all(
    db: Database, settings: Settings, *, on_done: Callable[[PollResult], None] | None = None
) -> list[PollResult]:
    """Poll every feed concurrently; one result per feed, in feed order; never raises.

    ``on_done`` is called as each feed finishes (the CLI's progress bar).
    """
    semaphore = asyncio.Semaphore(CONCURRENT_POLLS)

    async def one(url: str) -> PollResult:
        async with semaphore:
            result = await poll_feed(db, settings, url)
        if on_done is not None:
            on_done(result)
        return result

    urls = await asyncio.to_thread(feed_urls, db, settings)
    return list(await asyncio.gather(*(one(url) for url in urls)))
