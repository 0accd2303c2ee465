"""What every command shares: the settings and the store, each made once on first use."""

from __future__ import annotations

import json
import re
from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any

import click

from digest.config import Settings, load_settings
from digest.db import Database
from digest.mail.headers import BIDI_CONTROLS, printable_line
from digest.secret_key import machine_secret

# JSON escapes C0 controls itself; these it would print raw, and a terminal acts on them.
_TERMINAL_UNSAFE = re.compile(f"[\x7f-\x9f{BIDI_CONTROLS}]")


class AppContext(AbstractContextManager["AppContext"]):
    """Lazily loaded settings and store; commands that need neither never pay for them."""

    def __init__(self, settings: Settings | None = None) -> None:
        if settings is not None:
            self.__dict__["settings"] = settings

    @cached_property
    def settings(self) -> Settings:
        """The validated settings (a bad one raises SettingsError: one line, exit 78).

        A secret key file is read if there is one but made only with the store (``db``,
        ``create_db``): a command that finds no store must leave nothing behind.
        """
        return load_settings(make_secret=False)

    @cached_property
    def db(self) -> Database:
        """The store, migrated if behind; StoreUnavailable naming it when it does not exist."""
        database = Database.from_settings(self.settings)
        try:
            database.require()
            database.ensure_schema()
        except BaseException:
            database.dispose()
            raise
        self._complete_secret()
        return database

    def create_db(self) -> tuple[str | None, str | None]:
        """Create the store if it does not exist and migrate it (``db upgrade``, ``demo``,
        ``serve``); returns the (before, after) revisions. ``db`` is this store after."""
        database = Database.from_settings(self.settings)
        self.__dict__["db"] = database
        revisions = database.upgrade()
        self._complete_secret()
        return revisions

    def _complete_secret(self) -> None:
        if not self.settings.secret_key:
            self.settings.secret_key = machine_secret(self.settings.var_dir, make=True)

    def __exit__(self, *exc: object) -> None:
        if "db" in self.__dict__:
            self.db.dispose()


def pass_app(f: Any) -> Any:
    """Decorator: hand the command the AppContext as its first argument."""
    return click.pass_obj(f)


def echo_json(data: Any) -> None:
    """Print data as JSON for programs (datetimes as ISO 8601), every value as stored: what a
    terminal would act on is written as a \\u escape, which a program reads back unchanged."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    click.echo(_TERMINAL_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def shown(value: object) -> str:
    """A stored value as one printable line: how every command prints stored text, so a feed
    title or a name cannot move the cursor, colour the screen or hide a link."""
    return "" if value is None else printable_line(str(value))


def shown_lines(text: str) -> str:
    """A document for a terminal (a digest's text): each line through ``shown``, indent kept."""
    lines = (line[: len(line) - len(line.lstrip(" "))] + shown(line) for line in text.split("\n"))
    return "\n".join(lines)


def newsletter_option(f: Any) -> Any:
    """``--newsletter SLUG``: which newsletter a command is about; with one, it may be left out."""
    return click.option(
        "--newsletter",
        "newsletter",
        metavar="SLUG",
        help="the newsletter (its slug); may be left out while there is only one",
    )(f)
