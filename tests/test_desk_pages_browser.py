"""Every page of the desk, and every public page, in headless Chromium at phone (375 px) and
desktop (1280 px) widths: each is there (a page missing from the app fails), fits the width
without scrolling sideways, shows its images, and axe-core finds no serious or critical
violation of WCAG 2.1 A/AA in it.

The desk pages' screenshots are ``docs/desk/<page>-<width>.png``; remake them with
``DIGEST_SCREENSHOTS=docs .venv/bin/python -m pytest tests/test_desk_pages_browser.py``
(a plain run keeps them in the test's temporary folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import desk_accounts
from digest.audit import Actor
from digest.db import Database
from digest.links import alerts_off_url, preferences_url, stay_url, unsubscribe_url
from tests.support.browser import (
    AXE,
    MISSING,
    WCAG21AA,
    Browser,
    browser_missing,
    shots_folder,
    start_driver,
)
from tests.support.desk_site import (
    EDITOR,
    OWNER,
    READER,
    TWO_FACTOR,
    DeskSite,
    desk_site,
    sign_in,
    signed_in,
)
from tests.support.programs import IN_CI
from tests.support.smtp_server import smtp_server  # noqa: F401  (a fixture)
from tests.support.web import confirm_link, confirm_mails

pytestmark = pytest.mark.browser

if browser_missing():
    pytest.skip(MISSING, allow_module_level=True)

SERIOUS = ("serious", "critical")
SIZES = [(375, 900, True), (1280, 900, False)]


def desk_pages(site: DeskSite) -> list[tuple[str, str, str]]:
    """(screenshot name, path, what the page's title holds) of every desk page an owner sees."""
    return [
        ("today", "/desk/", "Today"),
        ("subscribers", "/desk/subscribers", "Subscribers"),
        ("subscribers-search", "/desk/subscribers?q=k", "Subscribers"),
        ("subscriber", f"/desk/subscribers/{site.reader_id}", READER),
        ("subscribers-import", "/desk/subscribers/import", "Import subscribers"),
        ("posts", "/desk/posts", "Posts"),
        ("post", f"/desk/posts/{site.post_id}", site.post_title),
        ("editions", "/desk/editions", "Editions"),
        ("edition", f"/desk/editions/{site.edition_id}", "Edition"),
        ("reports", "/desk/reports", "Reports"),
        ("announcements", "/desk/announcements", "Announcements"),
        ("announcement-new", "/desk/announcements/new", "New announcement"),
        ("announcement", f"/desk/announcements/{site.announcement_id}", "Announcement #"),
        ("announcement-edit", f"/desk/announcements/{site.announcement_id}/edit", "Edit"),
        ("feeds", "/desk/feeds", "Feeds"),
        ("settings", "/desk/settings", "Settings"),
        ("audit", "/desk/audit", "Audit log"),
        ("users", "/desk/users", "Accounts"),
        ("account", "/desk/account", "Your account"),
        ("not-found", "/desk/no-such-page", "Page not found"),
    ]


@pytest.fixture
def site(sqlite_db: Database, make_settings, smtp_server, tmp_path: Path) -> Iterator[DeskSite]:  # type: ignore[no-untyped-def]  # noqa: F811
    """The seeded desk on a real uvicorn."""
    with desk_site(sqlite_db, make_settings, smtp_server, tmp_path / "demo") as served:
        yield served


@pytest.fixture
def driver() -> Iterator[httpx.Client]:
    """A chromedriver process and an HTTP client pointed at it."""
    with start_driver() as http:
        yield http


def _looks_right(browser: Browser, width: int, page: str, shots: Path | None) -> list[str]:
    """What is wrong with the page as shown: sideways scrolling, its own images that do not
    load, axe-core's serious findings (WCAG 2.1 AA); its screenshot taken first if asked."""
    if shots is not None:
        # One pixel per CSS pixel: legible, and a tenth of the bytes of a phone's 2x.
        browser.full_screenshot(shots / f"{page}-{width}.png", scale=1)
    wrong = []
    sizes = browser.run("const d = document.documentElement; return [d.clientWidth, d.scrollWidth]")
    if sizes[1] > sizes[0]:
        wrong.append(f"{page}: scrolls sideways at {width}px ({sizes[1]}px wide)")
    # Images from elsewhere (a post's picture in an edition) cannot load here: no network.
    broken = browser.run(
        "return [...document.images].filter(i => i.src.startsWith(location.origin)"
        " && !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    wrong += [f"{page}: the image {src} does not load" for src in broken]
    if AXE is None:
        assert not IN_CI, "CI=true: install axe-core (scripts/services.sh)"
    else:
        found = browser.accessibility_violations(WCAG21AA, SERIOUS)
        wrong += [f"{page}: {violation}" for violation in found]
    return wrong


@pytest.mark.parametrize(("width", "height", "phone"), SIZES)
def test_every_desk_page(
    site: DeskSite, driver: httpx.Client, tmp_path: Path, width: int, height: int, phone: bool
) -> None:
    shots = shots_folder(tmp_path, "desk")
    wrong: list[str] = []
    browser = Browser(driver, tmp_path / "profile", width=width, height=height, phone=phone)
    try:
        browser.go(site.url + "/desk/login")
        browser.title_becomes("Sign in")
        wrong += _looks_right(browser, width, "login", shots)
        signed_in(browser, site.url, OWNER)
        for name, path, title in desk_pages(site):
            browser.go(site.url + path)
            shown = browser.title_becomes(title)
            assert "desk" in shown, f"{path}: {shown!r} is not a desk page"
            if name != "not-found":
                assert "Not found" not in shown, f"{path} is missing from the app"
            assert browser.url().endswith(path), f"{path} went to {browser.url()}"
            wrong += _looks_right(browser, width, name, shots)
        browser.go(site.url + "/desk/")
        browser.text_shows(OWNER)  # still signed in after the walk
        # The sign-in's second step: a code from the app, or enrolling when an owner asks.
        browser.click('form[action="/desk/logout"] button[type="submit"]')
        browser.title_becomes("Sign in")
        sign_in(browser, site.url, TWO_FACTOR)
        browser.title_becomes("Your code")
        wrong += _looks_right(browser, width, "login-code", shots)
        with site.db.transaction() as session:
            desk_accounts.set_require_totp(session, Actor.cli(), True)
        browser.go(site.url + "/desk/login")
        sign_in(browser, site.url, EDITOR)
        browser.title_becomes("Set up a second factor")
        wrong += _looks_right(browser, width, "login-enrol", shots)
    finally:
        browser.close()
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(("width", "height", "phone"), SIZES)
def test_every_public_page(
    site: DeskSite, driver: httpx.Client, tmp_path: Path, width: int, height: int, phone: bool
) -> None:
    with site.db.transaction() as session:
        from digest import subscribers

        reader = subscribers.get(session, READER)
        reader_id, email = int(reader.id or 0), reader.email
    settings = site.settings
    browser = Browser(driver, tmp_path / "profile", width=width, height=height, phone=phone)
    wrong: list[str] = []

    def check(page: str, shows: str) -> None:
        browser.text_shows(shows)
        wrong.extend(_looks_right(browser, width, page, None))

    try:
        browser.go(site.url + "/")
        check("subscribe", 'name="email"')
        new = f"walker{width}@example.com"
        browser.type("#email", new)
        browser.click('button[type="submit"]')
        browser.title_becomes("Check your inbox")
        check("check-inbox", "Check your inbox")
        ((_, body),) = confirm_mails(site.db, new)
        browser.go(confirm_link(body))
        check("confirm", 'type="submit"')
        browser.click('button[type="submit"]')
        browser.title_becomes("You're subscribed")
        check("confirmed", "You're subscribed")
        browser.go(preferences_url(settings, reader_id, email))
        check("preferences", email)
        browser.go(alerts_off_url(settings, reader_id, email, 1))
        check("alerts-off", 'type="submit"')
        browser.go(stay_url(settings, reader_id, email, 1))
        check("stay", 'type="submit"')
        browser.go(site.url + "/r/not-a-token.at-all")
        check("tracked link not found", f'href="{settings.base_url}"')
        browser.go(unsubscribe_url(settings, reader_id, email, 1))
        check("unsubscribe", 'type="submit"')
        browser.click('button[type="submit"]')
        browser.text_shows("unsubscribed")
        wrong.extend(_looks_right(browser, width, "unsubscribed", None))
        browser.go(site.url + "/archive")
        check("archive", f'href="/archive/{site.edition_id}"')
        browser.go(f"{site.url}/archive/{site.edition_id}")
        wrong.extend(_looks_right(browser, width, "archived edition", None))
        browser.go(site.url + "/no-such-page")
        check("not found", "no page")
    finally:
        browser.close()
    assert wrong == [], "\n".join(wrong)
