"""The outside programs some tests drive (Chromium, SpamAssassin, axe-core): finding them, and
one way to run headless Chromium, shared by the tests and ``bench/screenshots.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: Headless, and nothing that reaches out to the network: this machine's network is closed,
#: and background requests would only be refused, many at a time.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find(*names: str) -> str | None:
    """The first of ``names`` on PATH, or None."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def require(*names: str, package: str) -> str:
    """The program's path; otherwise the test skips, or fails under CI=true where it must run."""
    found = find(*names)
    if found is None:
        if IN_CI:
            pytest.fail(f"{names[0]} is not installed and CI=true: apt-get install {package}")
        pytest.skip(f"{names[0]} not installed")
    return found


def chromium() -> str | None:
    """The Chromium binary, if installed."""
    return find("chromium", "chromium-browser")


def axe_script() -> Path | None:
    """axe-core's ``axe.min.js`` as ``scripts/services.sh`` installs it (``npm install -g``)."""
    npm = find("npm")
    if npm is None:
        return None
    try:
        root = subprocess.run(
            [npm, "root", "--global"], check=True, capture_output=True, text=True, timeout=60
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    script = Path(root) / "axe-core" / "axe.min.js"
    return script if script.is_file() else None


def screenshot(
    binary: str, page: str, png: Path, width: int, height: int, extra: Sequence[str] = ()
) -> None:
    """A PNG of ``page`` (a URL) at ``width`` x ``height``, in a fresh browser profile."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [binary, *CHROMIUM_FLAGS, *extra, f"--user-data-dir={profile}",
             f"--screenshot={png}", f"--window-size={width},{height}", page],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
