"""The ``digest`` command: one group, a module per command family, errors mapped to exits here.

Each family lives in its own module (``cli/subscribers.py``, ``cli/posts.py``...) and is loaded
only when used, so ``digest subscribers list`` does not import the web stack.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from digest.cli.context import AppContext
from digest.errors import DigestError, StoreUnavailable, first_line
from digest.mail.headers import printable_line

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "db": "digest.cli.db:db",
    "subscribers": "digest.cli.subscribers:subscribers",
    "worker": "digest.cli.worker:worker",
    "status": "digest.cli.status:status",
    "posts": "digest.cli.posts:posts",
    "feeds": "digest.cli.feeds:feeds",
    "serve": "digest.cli.serve:serve",
    "send": "digest.cli.send:send",
    "preview": "digest.cli.preview:preview",
    "demo": "digest.cli.demo:demo",
    "bounces": "digest.cli.bounces:bounces",
    "settings": "digest.cli.settings:settings",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digest")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """digest: newsletter subscriptions and digest mail for a news site.

    Settings come from DIGEST_* environment variables and a .env file (see README).
    """
    ctx.obj = ctx.with_resource(AppContext())


def fail(message: str, code: int = 1) -> None:
    """Print one line to stderr and exit with ``code``: the CLI's only way to report an error."""
    click.echo(f"error: {printable_line(message)}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script: runs the group, turns domain errors into exit codes."""
    try:
        return cli.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DigestError as exc:
        fail(str(exc), exc.exit_code)
    except OperationalError as exc:
        err = StoreUnavailable(f"cannot use the database: {first_line(exc.orig or exc)}")
        fail(str(err), err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", 74)
    return None
