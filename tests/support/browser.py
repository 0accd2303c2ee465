"""Headless Chromium for the browser tests: a real uvicorn serving the app, chromedriver driven
over the W3C WebDriver protocol with plain HTTP (no selenium), and axe-core run in the page.

``Browser`` is one WebDriver session with the few commands the tests use; ``serve_app`` runs
an app on a free loopback port; ``start_driver`` starts chromedriver. Screenshots go to the
test's temporary folder unless ``DIGEST_SCREENSHOTS`` names a folder (``docs``), which is how
the PNGs in ``docs/`` and ``docs/desk/`` are remade.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.programs import CHROMIUM_FLAGS, IN_CI, axe_script, chromium, find

CHROMIUM = chromium()
CHROMEDRIVER = find("chromedriver")
AXE = axe_script()
#: Where screenshots are kept: DIGEST_SCREENSHOTS=docs refreshes the committed ones (a plain
#: test run must not leave the checkout changed).
#: Resolved here, at collection: the tests' settings fixture moves into a temporary folder.
SHOTS = (
    Path(os.environ["DIGEST_SCREENSHOTS"]).resolve()
    if os.environ.get("DIGEST_SCREENSHOTS")
    else None
)
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
#: WebDriver's codes for the keys the tests press.
TAB, ENTER = "\ue004", "\ue007"
#: WCAG 2.1 A and AA, as axe-core tags its rules.
WCAG21AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
MISSING = "chromium and chromium-driver are not installed"


def browser_missing() -> bool:
    """True when the browser tests should skip: no Chromium here and CI unset."""
    return not (CHROMIUM and CHROMEDRIVER) and not IN_CI


def shots_folder(tmp_path: Path, under: str = "") -> Path:
    """The folder screenshots go to: DIGEST_SCREENSHOTS (plus ``under``) or the test's own."""
    folder = SHOTS / under if SHOTS else tmp_path / (under or "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(check: Any, what: str, seconds: float = 60.0) -> None:
    """Wait for ``check()`` to be true; fail naming ``what`` after ``seconds``."""
    # By the clock, not a count of tries: a loaded machine can take many seconds to start a
    # process, and each check itself can take a while there.
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not start within {seconds:.0f} s")
        time.sleep(0.05)


def bound_socket() -> socket.socket:
    """A listening loopback socket: the port is ours until uvicorn takes the socket over."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@contextmanager
def serve_app(app: FastAPI, sock: socket.socket) -> Iterator[str]:
    """``app`` on a real uvicorn in a thread, on ``sock``; yields its base URL."""
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait(lambda: server.started, "uvicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def start_driver() -> Iterator[httpx.Client]:
    """A chromedriver process and an HTTP client pointed at it."""
    assert CHROMEDRIVER and CHROMIUM, "CI=true: install chromium and chromium-driver"
    port = free_port()
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
        wait(ready, "chromedriver")
        yield http
    finally:
        http.close()
        proc.terminate()
        proc.wait(timeout=10)


class Browser:
    """One WebDriver session: just the commands the tests need."""

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
        """One WebDriver command in this session; its value."""
        return self._ok(self.http.request(method, f"/session/{self.id}{path}", json=body))

    def go(self, url: str) -> None:
        """Open ``url``."""
        self.cmd("POST", "/url", {"url": url})

    def url(self) -> str:
        """The address of the page shown."""
        return str(self.cmd("GET", "/url"))

    def source(self) -> str:
        """The page's HTML as it is now."""
        return str(self.cmd("GET", "/source"))

    def title(self) -> str:
        """The page's title."""
        return str(self.cmd("GET", "/title"))

    def find(self, css: str) -> str:
        """The first element ``css`` matches (fails if none)."""
        found = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        assert ELEMENT in found, found
        return str(found[ELEMENT])

    def type(self, css: str, text: str) -> None:
        """Type ``text`` into the field ``css`` matches."""
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def clear(self, css: str) -> None:
        """Empty the field ``css`` matches."""
        self.cmd("POST", f"/element/{self.find(css)}/clear", {})

    def click(self, css: str) -> None:
        """Click the element ``css`` matches."""
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def press(self, *keys: str) -> None:
        """Press and release each key in turn, on whatever has the focus (``TAB``, ``ENTER``
        or plain characters)."""
        actions: list[dict[str, str]] = []
        for key in keys:
            actions += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        keyboard = {"type": "key", "id": "keys", "actions": actions}
        self.cmd("POST", "/actions", {"actions": [keyboard]})

    def focused(self) -> dict[str, str]:
        """What has the keyboard focus: its tag, id, text and outline style."""
        return dict(
            self.run(
                "const e = document.activeElement; const s = getComputedStyle(e);"
                "return {tag: e.tagName.toLowerCase(), id: e.id, text: e.textContent.trim(),"
                " outline: s.outlineStyle};"
            )
        )

    def title_becomes(self, wanted: str, seconds: float = 60.0) -> str:
        """Wait for a navigation to show a page whose title holds ``wanted``; return the title.

        chromedriver's click returns once the event is dispatched; under touch emulation it does
        not always wait for the navigation the click starts, so the old page can still be there.
        """
        deadline = time.monotonic() + seconds
        title = ""
        while time.monotonic() < deadline:
            title = self.title()
            if wanted in title:
                return title
            time.sleep(0.1)
        raise AssertionError(
            f"title is {title!r}, not {wanted!r}; the page:\n{self.source()[:3000]}"
        )

    def text_shows(self, wanted: str, seconds: float = 60.0) -> None:
        """Wait for the page's source to hold ``wanted`` (a form that posts to the same title)."""
        deadline = time.monotonic() + seconds
        source = ""
        while time.monotonic() < deadline:
            source = self.source()
            if wanted in source:
                return
            time.sleep(0.1)
        raise AssertionError(f"{wanted!r} is not on the page:\n{source[:3000]}")

    def run(self, script: str, *args: Any) -> Any:
        """Run ``script`` in the page; what it returns."""
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def in_zone(self, zone: str) -> None:
        """The browser's timezone from now on, as DevTools sets it."""
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Emulation.setTimezoneOverride", "params": {"timezoneId": zone}},
        )

    def fits(self, width: int, page: str = "the page") -> None:
        """The page does not scroll sideways at this width."""
        inner = self.run("return [window.innerWidth, document.documentElement.scrollWidth]")
        assert inner[1] <= inner[0], f"{page} scrolls sideways at {width}px: {inner}"

    def accessibility_violations(
        self, tags: tuple[str, ...] = (), impacts: tuple[str, ...] = ()
    ) -> list[str]:
        """axe-core's findings on the page as it is: ``rule (impact): elements``; only the rules
        with one of ``tags`` and the findings of one of ``impacts`` when given (else all)."""
        assert AXE is not None
        self.run(AXE.read_text(encoding="utf-8"))
        options = {"runOnly": {"type": "tag", "values": list(tags)}} if tags else {}
        found = self.cmd(
            "POST",
            "/execute/async",
            {
                "script": (
                    "const done = arguments[arguments.length - 1];"
                    "const impacts = arguments[1];"
                    "axe.run(document, arguments[0]).then(r => done(r.violations"
                    ".filter(v => impacts.length === 0 || impacts.includes(v.impact))"
                    ".map(v => v.id + ' (' + v.impact + '): '"
                    " + v.nodes.map(n => n.target.join(' ')).join(', '))),"
                    " e => done(['axe failed: ' + e]));"
                ),
                "args": [options, list(impacts)],
            },
        )
        return list(found)

    def screenshot(self, path: Path) -> None:
        """A PNG of the window as it shows the page."""
        path.write_bytes(base64.b64decode(self.cmd("GET", "/screenshot")))

    def full_screenshot(self, path: Path, scale: float | None = None) -> None:
        """A PNG of the whole page, however long: the viewport made as tall as the page for
        the shot (DevTools), then put back; ``scale`` pixels per CSS pixel (else the
        device's). Not ``captureBeyondViewport``, which leaves a sandboxed frame (the desk's
        mail previews) blank."""
        width, height, full, ratio, touch = self.run(
            "return [innerWidth, innerHeight, document.documentElement.scrollHeight,"
            " devicePixelRatio, navigator.maxTouchPoints > 0]"
        )
        self._metrics(width, full, scale or ratio, touch)
        try:
            self.screenshot(path)
        finally:
            self._metrics(width, height, ratio, touch)

    def _metrics(self, width: int, height: int, ratio: float, mobile: bool) -> None:
        params = {"width": width, "height": height, "deviceScaleFactor": ratio, "mobile": mobile}
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Emulation.setDeviceMetricsOverride", "params": params},
        )

    def close(self) -> None:
        """End the session (the browser quits)."""
        self.http.delete(f"/session/{self.id}")


def assert_accessible(
    browser: Browser, page: str, tags: tuple[str, ...] = (), impacts: tuple[str, ...] = ()
) -> None:
    """No axe-core violation on the page (skipped where axe-core is not installed, not in CI)."""
    if AXE is None:
        assert not IN_CI, "CI=true: install axe-core (scripts/services.sh)"
        return
    violations = browser.accessibility_violations(tags, impacts)
    assert violations == [], f"{page}: " + json.dumps(violations, indent=1)
