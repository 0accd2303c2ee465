"""A real browser fills in the subscribe page served by a real uvicorn, at phone and desktop sizes.

Headless Chromium driven by chromedriver over the W3C WebDriver protocol (plain HTTP, no
selenium). Skips only when Chromium is missing and CI is unset; under CI it must run.
Debian packages: ``chromium chromium-driver``. The page's screenshots in ``docs/`` come from
``DIGEST_SCREENSHOTS=docs .venv/bin/pytest tests/test_web_browser.py``.

The browser's timezone is set through DevTools (``Emulation.setTimezoneOverride``), as a reader
abroad has it; the subscribe and confirmed pages are checked with axe-core (``npm install -g
axe-core``, done by ``scripts/services.sh``) for every rule it has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import editions, newsletters, subscribers, subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.links import alerts_off_url, preferences_url, unsubscribe_url
from digest.models import Post
from digest.web.app import create_app
from tests.support.browser import (
    MISSING,
    Browser,
    assert_accessible,
    bound_socket,
    browser_missing,
    serve_app,
    shots_folder,
    start_driver,
)
from tests.support.web import confirm_link, confirm_mails

pytestmark = pytest.mark.browser

#: The server's default zone here: a reader whose browser sends none gets this one.
SERVER_ZONE = "America/Chicago"
if browser_missing():
    pytest.skip(MISSING, allow_module_level=True)


@pytest.fixture
def site(sqlite_db: Database, make_settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The web app on a real uvicorn on a free port; yields its base URL."""
    # Bound here and handed to uvicorn: no other process can take the port in between.
    sock = bound_socket()
    port = int(sock.getsockname()[1])
    settings = make_settings(
        database_url=sqlite_db.url,
        site_name="The Daily Brief",
        base_url=f"http://127.0.0.1:{port}",
        timezone=SERVER_ZONE,
    )
    with sqlite_db.transaction() as session:
        for i, cats in enumerate(
            [
                ["World"],
                ["World", "Politics"],
                ["Business"],
                ["Tech"],
                ["World", "Culture"],
                ["Sports"],
                ["Tech", "Business"],
            ]
        ):
            session.add(
                Post(
                    guid=f"p{i}", title=f"Story {i}", link=f"https://n.example/{i}", categories=cats
                )
            )
    with serve_app(create_app(settings, sqlite_db), sock) as url:
        yield url


@pytest.fixture
def driver() -> Iterator[httpx.Client]:
    """A chromedriver process and an HTTP client pointed at it."""
    with start_driver() as http:
        yield http


def _zone_of(db: Database, email: str) -> str:
    with db.transaction() as session:
        return subscribers.get(session, email).timezone


@pytest.mark.parametrize(("width", "height", "phone"), [(375, 1000, True), (1280, 1000, False)])
def test_subscribe_in_a_real_browser(
    site: str,
    driver: httpx.Client,
    sqlite_db: Database,
    tmp_path: Path,
    width: int,
    height: int,
    phone: bool,
) -> None:
    email = f"browser{width}@example.com"
    browser = Browser(driver, tmp_path / "profile", width=width, height=height, phone=phone)
    try:
        browser.in_zone("Asia/Tokyo")  # a reader in Tokyo, whatever this machine's zone
        browser.go(site + "/")
        assert "Stay in touch" in browser.cmd("GET", "/title")
        browser.fits(width)
        shots = shots_folder(tmp_path)
        browser.screenshot(shots / f"subscribe-{width}.png")
        assert (shots / f"subscribe-{width}.png").read_bytes().startswith(b"\x89PNG")
        assert_accessible(browser, "the subscribe page")
        browser.type("#email", email)
        browser.type("#name", "Bea Browser")
        browser.click('input[value="weekly"]')
        browser.click('input[value="World"]')
        browser.click('input[name="alerts"]')  # the breaking-news box, found by its name
        browser.click('button[type="submit"]')
        browser.title_becomes("Check your inbox")
        assert "confirmation email is on its way" in browser.cmd("GET", "/source")
        assert _zone_of(sqlite_db, email) == "Asia/Tokyo"  # what the browser said
        with sqlite_db.transaction() as session:
            assert subscribers.reader(session, email).subscription.alerts is True

        ((_, body),) = confirm_mails(sqlite_db, email)
        browser.go(confirm_link(body))
        browser.click('button[type="submit"]')
        browser.title_becomes("You're subscribed")
        browser.text_shows("Asia/Tokyo time")
        browser.fits(width)
        browser.screenshot(shots / f"confirmed-{width}.png")
        assert_accessible(browser, "the confirmed page")
        # The reader picks another zone from the list and saves it.
        browser.click('#timezone option[value="Europe/Lisbon"]')
        browser.click("form.zone button")
        browser.text_shows("Saved. Your digests now follow Europe/Lisbon time.")
        assert_accessible(browser, "the confirmed page, saved")
    finally:
        browser.close()
    assert _zone_of(sqlite_db, email) == "Europe/Lisbon"


def test_without_javascript_a_reader_gets_the_servers_zone(
    site: str, driver: httpx.Client, sqlite_db: Database, tmp_path: Path
) -> None:
    # A narrow window rather than phone emulation: chromedriver's emulated touch tap waits
    # for page scripts and hangs when there are none.
    browser = Browser(
        driver, tmp_path / "profile", width=375, height=1000, phone=False, scripts=False
    )
    try:
        browser.in_zone("Asia/Tokyo")  # the browser knows, but no script tells the form
        browser.go(site + "/")
        browser.type("#email", "noscript@example.com")
        browser.click('button[type="submit"]')
        browser.title_becomes("Check your inbox")
    finally:
        browser.close()
    assert _zone_of(sqlite_db, "noscript@example.com") == SERVER_ZONE


@pytest.mark.parametrize(("width", "height", "phone"), [(375, 1000, True), (1280, 1000, False)])
def test_the_newsletter_pages_fit_and_pass_axe(
    site: str,
    driver: httpx.Client,
    sqlite_db: Database,
    make_settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    width: int,
    height: int,
    phone: bool,
) -> None:
    """Several newsletters: the subscribe page's choice (alerts box included), the preference
    centre, a newsletter's unsubscribe and alerts-off pages and the archive, at phone and
    desktop widths."""
    settings = make_settings(database_url=sqlite_db.url, base_url=site)
    with sqlite_db.transaction() as session:
        sports = newsletters.add(
            session, "sports", name="Sports Weekly", description="Scores and stories on Fridays."
        )
        sports_id = int(sports.id or 0)
        for nid in (1, sports_id):
            reader = subscriptions.add(
                session, "both@example.com", newsletter_id=nid, confirmed=True, topics=["World"]
            )
    editions.make_edition(
        sqlite_db, settings, cadence="daily", now=utcnow(), due_only=False, newsletter="sports"
    )
    pages = {
        "subscribe": site + "/",
        "preferences": preferences_url(settings, reader.id, reader.email),
        "unsubscribe": unsubscribe_url(settings, reader.id, reader.email, sports_id),
        "alerts-off": alerts_off_url(settings, reader.id, reader.email, sports_id),
        "archive": site + "/archive",
    }
    shots = shots_folder(tmp_path)
    browser = Browser(driver, tmp_path / "profile", width=width, height=height, phone=phone)
    try:
        for name, url in pages.items():
            browser.go(url)
            browser.fits(width)
            browser.screenshot(shots / f"newsletters-{name}-{width}.png")
            assert_accessible(browser, f"the {name} page")
        browser.go(pages["subscribe"])
        browser.text_shows("Scores and stories on Fridays.")
        browser.go(pages["unsubscribe"])
        browser.text_shows("Sports Weekly")
    finally:
        browser.close()
