"""A real browser fills in the subscribe page served by a real uvicorn, at phone and desktop sizes.

Headless Chromium driven by chromedriver over the W3C WebDriver protocol (plain HTTP, no
selenium). Skips only when Chromium is missing and CI is unset; under CI it must run.
Debian packages: ``chromium chromium-driver``. The page's screenshots in ``docs/`` come from
``DIGEST_SCREENSHOTS=docs .venv/bin/pytest tests/test_web_browser.py``.
"""

from __future__ import annotations

import base64
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

from digest.db import Database
from digest.models import Post
from digest.web.app import create_app
from tests.support.programs import CHROMIUM_FLAGS, IN_CI, chromium, find
from tests.support.web import confirm_mails

pytestmark = pytest.mark.browser

CHROMIUM = chromium()
CHROMEDRIVER = find("chromedriver")
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
        database_url=sqlite_db.url, site_name="The Daily Brief", base_url=f"http://127.0.0.1:{port}"
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
        self, http: httpx.Client, profile: Path, *, width: int, height: int, phone: bool
    ) -> None:
        options: dict[str, Any] = {
            "binary": CHROMIUM,
            "args": [
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
            ],
        }
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

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def close(self) -> None:
        self.http.delete(f"/session/{self.id}")


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
    browser = Browser(driver, tmp_path / "profile", width=width, height=height, phone=phone)
    try:
        browser.go(site + "/")
        assert "Stay in touch" in browser.cmd("GET", "/title")
        inner = browser.cmd(
            "POST",
            "/execute/sync",
            {
                "script": "return [window.innerWidth, document.documentElement.scrollWidth]",
                "args": [],
            },
        )
        assert inner[1] <= inner[0], f"the page scrolls sideways at {width}px: {inner}"
        shots = Path(SHOTS) if SHOTS else tmp_path
        shots.mkdir(exist_ok=True)
        browser.screenshot(shots / f"subscribe-{width}.png")
        assert (shots / f"subscribe-{width}.png").read_bytes().startswith(b"\x89PNG")
        browser.type("#email", f"browser{width}@example.com")
        browser.type("#name", "Bea Browser")
        browser.click('input[value="weekly"]')
        browser.click('input[value="World"]')
        browser.click('button[type="submit"]')
        browser.title_becomes("Check your inbox")
        assert "confirmation email is on its way" in browser.cmd("GET", "/source")
    finally:
        browser.close()
    ((_, body),) = confirm_mails(sqlite_db, f"browser{width}@example.com")
    assert "/confirm/" in body.text
