"""The editor's desk in a real browser, as its users work it: headless Chromium signs in (and
fails to), is refused a form posted without its CSRF token and, as a viewer, an editor's
action; an editor searches the subscribers, opens a person, features a post, previews an
announcement and sends themself a test copy of an edition that arrives at a real SMTP server;
and the sign-in, the sections and the search work from the keyboard alone.

The app runs on uvicorn over an SQLite store seeded as ``digest demo`` seeds one
(tests/support/desk_site.py). Skips only when Chromium is missing and CI is unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.db import Database
from digest.models import Post
from tests.support.browser import ENTER, MISSING, TAB, Browser, browser_missing, start_driver
from tests.support.desk import PASSWORD
from tests.support.desk_site import (
    EDITOR,
    OWNER,
    READER,
    VIEWER,
    DeskSite,
    desk_site,
    sign_in,
    signed_in,
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
    browser.go(site.url + "/desk/subscribers")
    browser.title_becomes("Sign in")
    assert "/desk/login" in browser.url()
    sign_in(browser, site.url, EDITOR, password="not-the-password-at-all")
    # The answer: the address typed is shown again (the field's HTML, not what was typed
    # into the page before), with the refusal beside it.
    browser.text_shows(f'value="{EDITOR}"')
    browser.text_shows(WRONG)
    assert "Sign in" in browser.title()
    # An unknown address gets the very same answer.
    browser.clear("#email")
    sign_in(browser, site.url, "nobody@newsroom.example")
    browser.text_shows('value="nobody@newsroom.example"')  # the answer to this attempt
    browser.text_shows(WRONG)
    browser.clear("#email")
    sign_in(browser, site.url, EDITOR)
    browser.title_becomes("Subscribers")
    assert browser.url().endswith("/desk/subscribers")
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


def _featured(db: Database, post_id: int) -> bool:
    with db.transaction() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return bool(post.editor_featured)


def test_a_viewer_is_refused_an_editors_action(site: DeskSite, browser: Browser) -> None:
    signed_in(browser, site.url, VIEWER)
    browser.go(f"{site.url}/desk/posts/{site.post_id}")
    browser.title_becomes(site.post_title)
    # The viewer sees no feature form; one posted anyway, token and all, is refused.
    assert 'action="/desk/posts/' not in browser.source()
    browser.run(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "const t = document.querySelector('input[name=csrf_token]').cloneNode();"
        "f.appendChild(t); document.body.appendChild(f); f.submit();",
        f"/desk/posts/{site.post_id}/feature",
    )
    browser.title_becomes("Not allowed")
    browser.text_shows("Your role (viewer) does not allow this.")
    assert not _featured(site.db, site.post_id)
    # An owner's page, opened by address: refused too.
    browser.go(site.url + "/desk/users")
    browser.title_becomes("Not allowed")


def test_an_editor_works_the_desk(site: DeskSite, browser: Browser) -> None:
    signed_in(browser, site.url, EDITOR)
    # Subscribers: search by the start of an address, then open the person.
    browser.click('nav a[href="/desk/subscribers"]')
    browser.title_becomes("Subscribers")
    browser.type("#q", "kenji")
    browser.click('form[role="search"] button[type="submit"]')
    browser.text_shows('value="kenji"')  # the answer's page, the search kept in its field
    browser.text_shows(f">{READER}</a>")
    assert "maria@example.com" not in browser.source()
    browser.click(f'a[href="/desk/subscribers/{site.reader_id}"]')
    browser.title_becomes(READER)
    browser.text_shows("Kenji Sato")

    # Posts: feature one until an end time.
    browser.click('nav a[href="/desk/posts"]')
    browser.title_becomes("Posts")
    browser.click(f'a[href="/desk/posts/{site.post_id}"]')
    browser.text_shows("Feature under Don't Miss")
    assert not _featured(site.db, site.post_id)
    browser.run("document.querySelector('#until').value = '2099-01-02T09:30'")
    browser.click(f'form[action="/desk/posts/{site.post_id}/feature"] button[type="submit"]')
    browser.text_shows("The post is featured.")
    browser.text_shows("until 2099-01-02")
    assert _featured(site.db, site.post_id)

    # Announcements: write one, then see its preview.
    browser.go(site.url + "/desk/announcements/new")
    browser.title_becomes("New announcement")
    browser.type("#subject", "A word from the editor")
    browser.type("#body", "Thanks for **reading** us this year.")
    browser.click('form[action="/desk/announcements"] button[type="submit"]')
    browser.title_becomes("Announcement #")
    browser.text_shows("A word from the editor")
    frame = browser.run("const f = document.querySelector('iframe'); return f && f.src;")
    assert frame, "no preview frame on the announcement's page"
    browser.go(frame)  # what the frame shows, opened on its own with the same cookies
    preview = browser.source()
    assert "<strong>reading</strong>" in preview
    browser.cmd("POST", "/back", {})
    browser.title_becomes("Announcement #")

    # Editions: a test copy to yourself, which the SMTP server receives.
    browser.click('nav a[href="/desk/editions"]')
    browser.title_becomes("Editions")
    browser.click(f'a[href="/desk/editions/{site.edition_id}"]')
    browser.title_becomes("Edition")
    before = len(site.smtp.handler.received)
    browser.click(f'form[action="/desk/editions/{site.edition_id}/test"] button[type="submit"]')
    browser.text_shows("A test copy went to your address.")
    arrived = site.smtp.handler.received[before:]
    assert [m.rcpt_tos for m in arrived] == [(EDITOR,)]
    assert b"Subject:" in arrived[0].data


def test_an_owner_sees_the_accounts_page(site: DeskSite, browser: Browser) -> None:
    signed_in(browser, site.url, OWNER)
    browser.click('nav a[href="/desk/users"]')
    browser.title_becomes("Accounts")
    for email in (OWNER, EDITOR, VIEWER):
        browser.text_shows(email)


def _tab_to(browser: Browser, element_id: str, most: int = 10) -> None:
    """Press Tab until the element with this id has the focus (fails after ``most``)."""
    for _ in range(most):
        browser.press(TAB)
        if browser.focused()["id"] == element_id:
            return
    raise AssertionError(f"#{element_id} never took the focus; last: {browser.focused()}")


def test_the_desk_from_the_keyboard_alone(site: DeskSite, browser: Browser) -> None:
    browser.go(site.url + "/desk/login")
    browser.title_becomes("Sign in")
    # The first Tab reaches the skip link, which is shown and outlined when focused.
    browser.press(TAB)
    first = browser.focused()
    assert first["text"] == "Skip to content" and first["outline"] != "none", first
    _tab_to(browser, "email")
    browser.press(*EDITOR)
    browser.press(TAB)
    assert browser.focused()["id"] == "password"
    browser.press(*PASSWORD, ENTER)
    browser.title_becomes("Today")
    # On a signed-in page: skip to the content, then the sections one Tab after another.
    browser.press(TAB)
    assert browser.focused()["text"] == "Skip to content"
    browser.press(ENTER)
    assert browser.url().endswith("#main")
    browser.go(site.url + "/desk/")
    browser.title_becomes("Today")
    browser.press(TAB, TAB, TAB)  # the skip link, the desk's name, then the first section
    assert browser.focused()["text"] == "Today"
    browser.press(TAB)
    assert browser.focused()["text"] == "Subscribers"
    browser.press(ENTER)
    browser.title_becomes("Subscribers")
    # The search, typed and sent with Enter.
    _tab_to(browser, "q", most=30)
    browser.press(*"maria", ENTER)
    browser.text_shows('value="maria"')  # the answer's page, the search kept in its field
    browser.text_shows(">maria@example.com</a>")
    assert READER not in browser.source()
