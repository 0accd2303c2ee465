"""Running ``digest serve`` as a subprocess on a free port, and waiting on what it does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.smtp_server import free_port

DIGEST = str(Path(sys.executable).parent / "digest")
SECRET = "serve-test-secret-0123456789-abcdefghijkl"


@dataclass
class Served:
    """A running ``digest serve``."""

    proc: subprocess.Popen[str]
    url: str
    log_path: Path

    def log_lines(self) -> list[str]:
        """What it logged so far (stderr)."""
        return self.log_path.read_text(encoding="utf-8").splitlines()

    def terminate(self) -> int:
        """SIGTERM, then its exit code (fails the test if it takes over 30 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("digest serve did not exit within 30 s of SIGTERM")


def serve_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a serve subprocess: ours, with no DIGEST_* from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        {
            "DIGEST_SECRET_KEY": SECRET,
            "DIGEST_SMTP_URL": f"file:{tmp_path / 'outbox'}",
            "DIGEST_VAR_DIR": str(tmp_path / "var"),
        }
    )
    env.update({f"DIGEST_{k.upper()}": v for k, v in settings.items()})
    return env


def _start_serve(tmp_path: Path, env: dict[str, str], log_path: Path) -> Served:
    """``digest serve`` on a port that is free right now."""
    port = free_port()
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [DIGEST, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={"DIGEST_BASE_URL": f"http://127.0.0.1:{port}", **env},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
    return Served(proc, f"http://127.0.0.1:{port}", log_path)


def _comes_up(served: Served, limit: float = 60.0) -> bool:
    """True once /healthz answers, False if serve exits first; fails the test after ``limit``."""
    deadline = time.monotonic() + limit
    while served.proc.poll() is None:
        try:
            if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"digest serve did not come up within {limit:.0f} s")
        time.sleep(0.1)
    return False


@contextmanager
def serving(tmp_path: Path, env: dict[str, str], name: str = "serve") -> Iterator[Served]:
    """Start ``digest serve`` on a free port and wait until /healthz answers."""
    log_path = tmp_path / f"{name}.log"
    for attempt in range(5):
        served = _start_serve(tmp_path, env, log_path)
        try:
            up = _comes_up(served)
        except BaseException:
            served.proc.kill()
            served.proc.wait()
            raise
        if up:
            break
        # Another process can take the free port before serve binds it: then take another.
        busy = served.proc.returncode == 74 and "cannot listen" in log_path.read_text()
        if not busy or attempt == 4:
            pytest.fail(f"digest serve exited with {served.proc.returncode}: {served.log_lines()}")
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def wait_until(condition, what: str, limit: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until true; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)
