"""The ``digest`` command: one group, a module per command family, errors mapped to exits here.

Each family lives in its own module (``cli/subscribers.py``, ``cli/posts.py``...) and is loaded
only when used, so ``digest subscribers list`` does not import the web stack, and ``digest
--help`` imports neither the store nor the settings (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from digest.errors import DigestError, StoreUnavailable, first_line

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
    "check": "digest.cli.check:check",
    "dkim": "digest.cli.dkim:dkim",
    "newsletters": "digest.cli.newsletters:newsletters_",
    "announce": "digest.cli.announce:announce",
    "users": "digest.cli.users:users",
    "audit": "digest.cli.audit:audit",
    # List hygiene.
    "hygiene": "digest.cli.hygiene:hygiene",
    # issue 16, webhooks
    "webhooks": "digest.cli.webhooks:webhooks",
    # engagement reports (issue 16)
    "stats": "digest.cli.stats:stats",
}
# The first line of each command's help, which ``digest --help`` shortens and lists without
# importing any command (tests/test_cli_startup.py holds both lists equal); a command missing
# here is imported to ask.
SHORT_HELP: dict[str, str] = {
    "db": "Manage the store's schema.",
    "subscribers": "Manage subscribers.",
    "worker": "Send queued mail until stopped (SIGTERM/SIGINT: finish in-flight mail, then exit).",
    "status": "Show the latest editions, the outbox by state, and the last delivery errors.",
    "posts": "Import, list, add and feature posts.",
    "feeds": "Manage the feeds polled on schedule (also DIGEST_FEEDS).",
    "serve": "Run the web app, the scheduler and a delivery worker in one process (stop: SIGTERM).",
    "send": "Make the edition now for every active subscriber of CADENCE and deliver it.",
    "preview": "Show the digest a subscriber would get now "
    "(the same selection and history as a send).",
    "demo": "Run digest end to end on this machine: "
    "sample posts, subscribers, digests as .eml files.",
    "bounces": "Record bounces and complaints that arrive after sending.",
    "settings": "Show every DIGEST_* setting: its effective value, its default and what it does.",
    "check": "Check deliverability: DNS, the site, the SMTP relay, the list's health, "
    "a sample digest.",
    "dkim": "Make DKIM keys for signing mail.",
    "newsletters": "Manage newsletters: add, list, show, edit, archive.",
    "announce": "One-off announcements to a newsletter's readers.",
    "users": "Desk accounts: add, list, change a role or a password, remove.",
    "audit": "Show the audit log: who changed what, when, from where, through which face.",
    # List hygiene.
    "hygiene": "Ask silent readers if they still want the newsletter; retire the unanswered.",
    # issue 16, webhooks
    "webhooks": "Signed event POSTs to other systems: add, list, remove, test.",
    # engagement reports (issue 16)
    "stats": "Show what each mail did (sent, bounced, complaints, unsubscribes, clicks), "
    "readers per day.",
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help`` as click writes it, from ``SHORT_HELP``."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in SHORT_HELP:
                listed = click.Command(name, help=SHORT_HELP[name])  # shortened as click does
                rows.append((name, listed.get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="digest")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """digest: newsletter subscriptions and digest mail for a news site.

    Settings come from DIGEST_* environment variables and a .env file (see README).
    """
    # Imported here, not above: ``digest --help`` never gets this far and must not pay for the
    # settings and the store.
    from digest.cli.context import AppContext

    ctx.obj = ctx.with_resource(AppContext())


def fail(message: str, code: int = 1) -> None:
    """Print one line to stderr and exit with ``code``: the CLI's only way to report an error."""
    from digest.mail.headers import printable_line

    click.echo(f"error: {printable_line(message)}", err=True)
    sys.exit(code)


def _database_error(exc: Exception) -> StoreUnavailable | None:
    """``exc`` as StoreUnavailable when it is SQLAlchemy's OperationalError, else None.

    Looked up in ``sys.modules``: if SQLAlchemy was never imported, this cannot be its error.
    """
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.OperationalError):
        return None
    return StoreUnavailable(f"cannot use the database: {first_line(exc.orig or exc)}")


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
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", 74)
    except Exception as exc:
        err = _database_error(exc)
        if err is None:
            raise
        fail(str(err), err.exit_code)
    return None
