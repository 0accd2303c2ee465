"""The wheel is a whole digest: templates, migrations and the sample feed travel inside it.

Built with the project's own backend (hatchling, from the dev extras) and unpacked into a folder
of its own; ``digest demo`` then runs from that folder, outside the checkout, so it can only find
what the wheel carries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("digest-*.whl")
    return built


def _python(program: str, site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``program`` in a fresh interpreter with ``site`` as argv[1], no DIGEST_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [sys.executable, "-c", program, str(site), *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_wheel_carries_templates_migrations_and_samples(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in [
        "digest/__init__.py",
        "digest/py.typed",
        "digest/samples/sample_feed.xml",
        "digest/web/static/timezone.js",  # the subscribe page's script
        "digest/_bundled/templates/digest.html",
        "digest/_bundled/templates/digest.txt",
        "digest/_bundled/templates/digest_subject.txt",
        "digest/_bundled/templates/confirm.html",
        "digest/_bundled/templates/web/subscribe.html",
        "digest/_bundled/alembic/env.py",
        "digest/_bundled/alembic/versions/0001_initial.py",
    ]:
        assert needed in names, f"{needed} is missing from {wheel.name}"
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_the_unpacked_wheel_runs_the_demo_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    # The wheel's folder goes first on the path, ahead of the editable checkout.
    program = "\n".join(
        [
            "import sys",
            "site = sys.argv.pop(1)",
            "sys.path.insert(0, site)",
            "import digest, digest.resources as r",
            "assert digest.__file__.startswith(site), digest.__file__",
            "print('templates', r.templates_dir())",
            "print('alembic', r.alembic_dir())",
            "from digest.cli import main",
            "sys.argv = ['digest', 'demo']",
            "main()",
        ]
    )
    done = _python(program, site, cwd=work)
    assert done.returncode == 0, done.stderr
    assert f"templates {site / 'digest' / '_bundled' / 'templates'}" in done.stdout
    assert f"alembic {site / 'digest' / '_bundled' / 'alembic'}" in done.stdout
    assert "4 sent" in done.stdout, done.stdout
    mails = list((work / "var" / "demo" / "outbox").glob("*.eml"))
    assert len(mails) == 4
    assert all(b"LATEST POSTS" in m.read_bytes() for m in mails)


def test_an_install_without_its_templates_says_so_in_one_line(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    (site / "digest" / "_bundled" / "alembic").rename(tmp_path / "elsewhere")
    program = "import sys; sys.path.insert(0, sys.argv.pop(1)); from digest.cli import main; main()"
    done = _python(program, site, "db", "upgrade", cwd=tmp_path)
    assert done.returncode == 70
    assert "Traceback" not in done.stderr
    assert "installed without its alembic/ folder" in done.stderr
