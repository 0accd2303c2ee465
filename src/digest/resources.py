"""Where the files digest ships beside its code are: the email and page templates, the migrations.

In a source checkout (and an editable install) they sit at the top of the repository, beside
``src/``: ``templates/`` and ``alembic/``, where operators and Alembic find them without digging
into the package. A wheel carries the same two folders inside the package, under
``digest/_bundled/`` (see ``[tool.hatch.build.targets.wheel]`` in ``pyproject.toml``), so
``pip install digest`` works without the repository around it.
"""

from __future__ import annotations

from pathlib import Path

import digest
from digest.errors import BrokenInstall

PACKAGE_DIR = Path(digest.__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "_bundled"
CHECKOUT_DIR = PACKAGE_DIR.parents[1]


def shipped(name: str) -> Path:
    """The shipped folder ``name`` (``templates`` or ``alembic``): the wheel's, else the checkout's.

    The wheel's copy wins so that an installed digest never picks up a stray folder of the same
    name from wherever site-packages happens to live.
    """
    for folder in (BUNDLED_DIR / name, CHECKOUT_DIR / name):
        if folder.is_dir():
            return folder
    raise BrokenInstall(
        f"digest is installed without its {name}/ folder "
        f"(looked in {BUNDLED_DIR / name} and {CHECKOUT_DIR / name}); reinstall it"
    )


def templates_dir() -> Path:
    """The shipped template sets (``digest*``, ``confirm*``, ``web/``)."""
    return shipped("templates")


def alembic_dir() -> Path:
    """The Alembic script folder with ``env.py`` and ``versions/``."""
    return shipped("alembic")
