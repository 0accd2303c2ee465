"""The editor's desk in a real browser, as its users work it: headless Chromium signs in (and
fails to), is refused a form posted without its CSRF token and, as a viewer, an editor's
action; an editor searches the subscribers, opens a person, features a post, previews an
announcement and sends themself a test copy of an edition that arrives at a real SMTP server.

The app runs on uvicorn over an SQLite store seeded as ``digest demo`` seeds one
(tests/support/desk_site.py). Skips only when Chromium is missing and CI is unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.db import Database
from tests.support.browser import MISSING, Browser, browser_missing, start_driver
from tests.support.desk_site import (
    EDITOR,
    DeskSite,
    desk_site,
    sign_in,
)
from tests.support.smtp_server import smtp_server  # noqa: F401  (a fixture)

pytestmark = pytest.mark.browser

if browser_missing():
    pytest.skip(MISSING, allow_module_level=True)

WRONG = "That address and password do not match an account."


@pytest.fixture
def site(sqlite_db: Database, make_settings, smtp_server, tmp_path: Path) -> Iterator[DeskSite]:  # type: ignore[no-untyped-def]  # noqa: F811
    """The seeded desk on a real uvicorn."""
    with desk_site(sqlite_db, make_settings, smtp_server, tmp_path / "demo") as served:
        yield served


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Chromium in a desktop-sized window."""
    with start_driver() as http:
        chromium = Browser(http, tmp_path / "profile", width=1280, height=1000, phone=False)
        try:
            yield chromium
        finally:
            chromium.close()


def _without_token_submit(browser: Browser, form: str) -> None:
    """Take the form's csrf_token field out, as a page elsewhere posting here would lack it,
    then press the form's button."""
    removed = browser.run(
        "const f = document.querySelector(arguments[0]);"
        "const t = f.querySelector('input[name=csrf_token]'); t.remove(); return !!t;",
        form,
    )
    assert removed
    browser.click(form + ' button[type="submit"]')


def test_sign_in_refusals_and_csrf(site: DeskSite, browser: Browser) -> None:
    # A page of the desk, not signed in: the sign-in form, which then goes back to that page.
    browser.go(site.url + "/desk/?from=test")
    browser.title_becomes("Sign in")
    assert "/desk/login" in browser.url()
    sign_in(browser, site.url, EDITOR, password="not-the-password-at-all")
    browser.text_shows(WRONG)
    assert "Sign in" in browser.title()
    # The address stays typed; an unknown address gets the very same answer.
    typed = browser.run("return document.querySelector('#email').value")
    assert typed == EDITOR
    browser.clear("#email")
    sign_in(browser, site.url, "nobody@newsroom.example")
    browser.text_shows(WRONG)
    browser.clear("#email")
    sign_in(browser, site.url, EDITOR)
    browser.title_becomes("Today")
    assert browser.url().endswith("/desk/?from=test")
    assert EDITOR in browser.source()

    # The header's sign-out form, its token taken out: refused, and still signed in.
    _without_token_submit(browser, 'form[action="/desk/logout"]')
    browser.title_becomes("Not allowed")
    browser.text_shows("did not come from the desk")
    browser.go(site.url + "/desk/")
    browser.title_becomes("Today")
    # With its token, signing out works, and the desk asks to sign in again.
    browser.click('form[action="/desk/logout"] button[type="submit"]')
    browser.title_becomes("Sign in")
    browser.go(site.url + "/desk/")
    browser.title_becomes("Sign in")
