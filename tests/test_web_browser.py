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

import base64
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from digest import editions, newsletters, subscribers, subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.links import alerts_off_url, preferences_url, unsubscribe_url
from digest.models import Post
from digest.web.app import create_app
from tests.support.programs import CHROMIUM_FLAGS, IN_CI, axe_script, chromium, find
from tests.support.web import confirm_link, confirm_mails

pytestmark = pytest.mark.browser

CHROMIUM = chromium()
CHROMEDRIVER = find("chromedriver")
AXE = axe_script()
#: The server's default zone here: a reader whose browser sends none gets this one.
SERVER_ZONE = "America/Chicago"
# Screenshots go to the test's temporary folder; `DIGEST_SCREENSHOTS=docs` refreshes the ones in
# docs/ (a test run must not leave the checkout changed).
SHOTS = os.environ.get("DIGEST_SCREENSHOTS")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

if not (CHROMIUM and CHROMEDRIVER) and not IN_CI:
    pytest.skip("chromium and chromium-driver are not installed", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Any, what: str, seconds: float = 60.0) -> None:
    # By the clock, not a count of tries: a loaded machine can take many seconds to start a
    # process, and each check itself can take a while there.
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start within {seconds:.0f} s")
        time.sleep(0.05)


@pytest.fixture
def site(sqlite_db: Database, make_settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The web app on a real uvicorn on a free port; yields its base URL."""
    # Bound here and handed to uvicorn: no other process can take the port in between.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
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
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, sqlite_db),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait(lambda: server.started, "uvicorn")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[httpx.Client]:
    """A chromedriver process and an HTTP client pointed at it."""
    assert CHROMEDRIVER and CHROMIUM, "CI=true: install chromium and chromium-driver"
    port = _free_port()
    proc = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def ready() -> bool:
        try:
            return bool(http.get("/status").json()["value"]["ready"])
        except httpx.HTTPError:
            return False

    try:
        _wait(ready, "chromedriver")
        yield http
    finally:
        http.close()
        proc.terminate()
        proc.wait(timeout=10)


class Browser:
    """One WebDriver session: just the commands this test needs."""

    def __init__(
        self,
        http: httpx.Client,
        profile: Path,
        *,
        width: int,
        height: int,
        phone: bool,
        scripts: bool = True,
    ) -> None:
        options: dict[str, Any] = {
            "binary": CHROMIUM,
            "args": [
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
            ],
        }
        if not scripts:
            # As a reader who turned JavaScript off: the page's own scripts never run.
            options["args"].append("--blink-settings=scriptEnabled=false")
        if phone:
            options["mobileEmulation"] = {
                "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": True}
            }
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        self.http = http
        self.id = self._ok(http.post("/session", json=caps))["sessionId"]

    @staticmethod
    def _ok(response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()["value"]

    def cmd(self, method: str, path: str, body: Any = None) -> Any:
        return self._ok(self.http.request(method, f"/session/{self.id}{path}", json=body))

    def go(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        found = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        assert ELEMENT in found, found
        return str(found[ELEMENT])

    def type(self, css: str, text: str) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def title_becomes(self, wanted: str, seconds: float = 60.0) -> str:
        """Wait for a navigation to show a page whose title holds ``wanted``; return the title.

        chromedriver's click returns once the event is dispatched; under touch emulation it does
        not always wait for the navigation the click starts, so the old page can still be there.
        """
        deadline = time.monotonic() + seconds
        title = ""
        while time.monotonic() < deadline:
            title = str(self.cmd("GET", "/title"))
            if wanted in title:
                return title
            time.sleep(0.1)
        source = str(self.cmd("GET", "/source"))
        raise AssertionError(f"title is {title!r}, not {wanted!r}; the page:\n{source[:2000]}")

    def text_shows(self, wanted: str, seconds: float = 60.0) -> None:
        """Wait for the page's source to hold ``wanted`` (a form that posts to the same title)."""
        deadline = time.monotonic() + seconds
        source = ""
        while time.monotonic() < deadline:
            source = str(self.cmd("GET", "/source"))
            if wanted in source:
                return
            time.sleep(0.1)
        raise AssertionError(f"{wanted!r} is not on the page:\n{source[:2000]}")

    def run(self, script: str, *args: Any) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def in_zone(self, zone: str) -> None:
        """The browser's timezone from now on, as DevTools sets it."""
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Emulation.setTimezoneOverride", "params": {"timezoneId": zone}},
        )

    def fits(self, width: int) -> None:
        """The page does not scroll sideways at this width."""
        inner = self.run("return [window.innerWidth, document.documentElement.scrollWidth]")
        assert inner[1] <= inner[0], f"the page scrolls sideways at {width}px: {inner}"

    def accessibility_violations(self) -> list[str]:
        """axe-core's findings on the page as it is: ``rule (impact): elements``."""
        assert AXE is not None
        self.run(AXE.read_text(encoding="utf-8"))
        found = self.cmd(
            "POST",
            "/execute/async",
            {
                "script": (
                    "const done = arguments[arguments.length - 1];"
                    "axe.run(document).then(r => done(r.violations.map(v => v.id + ' ('"
                    " + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))),"
                    " e => done(['axe failed: ' + e]));"
                ),
                "args": [],
            },
        )
        return list(found)

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def close(self) -> None:
        self.http.delete(f"/session/{self.id}")


def _zone_of(db: Database, email: str) -> str:
    with db.transaction() as session:
        return subscribers.get(session, email).timezone


def _accessible(browser: Browser, page: str) -> None:
    """No axe-core violation on the page (skipped where axe-core is not installed, not in CI)."""
    if AXE is None:
        assert not IN_CI, "CI=true: install axe-core (scripts/services.sh)"
        return
    violations = browser.accessibility_violations()
    assert violations == [], f"{page}: " + json.dumps(violations, indent=1)


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
        shots = Path(SHOTS) if SHOTS else tmp_path
        shots.mkdir(exist_ok=True)
        browser.screenshot(shots / f"subscribe-{width}.png")
        assert (shots / f"subscribe-{width}.png").read_bytes().startswith(b"\x89PNG")
        _accessible(browser, "the subscribe page")
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
        _accessible(browser, "the confirmed page")
        # The reader picks another zone from the list and saves it.
        browser.click('#timezone option[value="Europe/Lisbon"]')
        browser.click("form.zone button")
        browser.text_shows("Saved. Your digests now follow Europe/Lisbon time.")
        _accessible(browser, "the confirmed page, saved")
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
    shots = Path(SHOTS) if SHOTS else tmp_path
    shots.mkdir(exist_ok=True)
    browser = Browser(driver, tmp_path / "profile", width=width, height=height, phone=phone)
    try:
        for name, url in pages.items():
            browser.go(url)
            browser.fits(width)
            browser.screenshot(shots / f"newsletters-{name}-{width}.png")
            _accessible(browser, f"the {name} page")
        browser.go(pages["subscribe"])
        browser.text_shows("Scores and stories on Fridays.")
        browser.go(pages["unsubscribe"])
        browser.text_shows("Sports Weekly")
    finally:
        browser.close()
