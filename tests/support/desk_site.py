"""A desk worth looking at, served for a real browser: the demo's world (sample feed, readers,
editions) in an SQLite store, a feed, a draft announcement, an owner, an editor and a viewer,
the app on uvicorn and an aiosmtpd server as DIGEST_SMTP_URL (test copies arrive there)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyotp
from sqlmodel import col, select

from digest import desk_accounts, desk_totp
from digest.announcement_store import Draft, create
from digest.audit import Actor
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.demo import run_demo
from digest.models import Edition, Post, Subscriber
from digest.posts.feeds import add_feed
from digest.web.app import create_app
from tests.support.browser import Browser, bound_socket, serve_app
from tests.support.desk import PASSWORD, make_user
from tests.support.smtp_server import SmtpServer

OWNER = "olga.owner@newsroom.example"
EDITOR = "ed.editor@newsroom.example"
VIEWER = "vi.viewer@newsroom.example"
#: An editor with a second factor: after the password, the sign-in asks for a code.
TWO_FACTOR = "tess.totp@newsroom.example"
SITE_NAME = "The Daily Brief"
#: One of the demo's readers (digest.demo.SAMPLE_SUBSCRIBERS): the one the tests look up.
READER = "kenji@example.com"
ANNOUNCEMENT = "Our new weekend edition"


@dataclass(frozen=True)
class DeskSite:
    """The running desk and the ids of what the pages show."""

    url: str
    db: Database
    settings: Settings
    smtp: SmtpServer
    reader_id: int
    post_id: int
    post_title: str
    edition_id: int
    announcement_id: int


def _seed(db: Database, settings: Settings, folder: Path) -> tuple[int, int, str, int, int]:
    run_demo(db, settings, folder)
    with db.transaction() as session:
        add_feed(session, "https://news.example/feed.xml")
        draft = Draft(ANNOUNCEMENT, markdown="From **Saturday**, a calmer read for the weekend.")
        announcement = create(session, None, draft, settings)
        reader = session.exec(select(Subscriber).where(Subscriber.email == READER)).one()
        post = session.exec(select(Post).order_by(col(Post.id))).first()
        edition = session.exec(select(Edition).order_by(col(Edition.id))).first()
        assert post is not None and edition is not None, "the demo made no post or edition"
        ids = (int(reader.id or 0), int(post.id or 0), post.title, edition.id, announcement.id)
    for email, role in ((OWNER, "owner"), (EDITOR, "editor"), (VIEWER, "viewer")):
        make_user(db, email, role)
    make_user(db, TWO_FACTOR, "editor")
    with db.transaction() as session:
        secret = pyotp.random_base32()
        user = desk_accounts.get(session, TWO_FACTOR)
        code = pyotp.TOTP(secret).now()
        assert desk_totp.enrol(session, Actor.cli(), user, secret, code, utcnow())
    return (ids[0], ids[1], ids[2], int(ids[3] or 0), int(ids[4] or 0))


@contextmanager
def desk_site(
    db: Database,
    make_settings,
    smtp: SmtpServer,
    folder: Path,  # type: ignore[no-untyped-def]
) -> Iterator[DeskSite]:
    """Seed ``db`` and serve the app over it on a free loopback port."""
    sock = bound_socket()  # the port is ours from here: base_url can name it
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = make_settings(
        database_url=db.url, site_name=SITE_NAME, base_url=url, smtp_url=smtp.url
    )
    ids = _seed(db, settings, folder)
    with serve_app(create_app(settings, db), sock) as served:
        yield DeskSite(served, db, settings, smtp, *ids)


def sign_in(browser: Browser, site: str, email: str, password: str = PASSWORD) -> None:
    """Fill in the sign-in form and send it (where it lands is the caller's to check)."""
    browser.type("#email", email)
    browser.type("#password", password)
    browser.click('form[action="/desk/login"] button[type="submit"]')


def signed_in(browser: Browser, site: str, email: str) -> None:
    """Open the sign-in page, sign in, and wait for Today."""
    browser.go(site + "/desk/login")
    sign_in(browser, site, email)
    browser.title_becomes("Today")
