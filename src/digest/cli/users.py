"""``digest users``: the desk's accounts. The CLI is the operator: it may make any account,
the first owner included (the desk has no sign-up page)."""

from __future__ import annotations

import sys

import click

from digest import desk_accounts
from digest.audit import Actor
from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.errors import InvalidInput

_MAX_STDIN = 4096


def _password(from_stdin: bool) -> str:
    """The new password: one line of stdin (its line ending is not part of it), or asked twice
    without echo at a terminal."""
    if from_stdin:
        text = sys.stdin.read(_MAX_STDIN + 2)
        if text.endswith("\n"):
            text = text[:-1]
            if text.endswith("\r"):
                text = text[:-1]
        if "\n" in text or "\r" in text:
            raise InvalidInput("--password-stdin takes one line: the password")
        return text
    if not sys.stdin.isatty():
        raise InvalidInput("there is no terminal to ask for the password: use --password-stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group(name="users")
def users() -> None:
    """Desk accounts: add, list, change a role or a password, remove."""


@users.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(["owner", "editor", "viewer"], case_sensitive=False),
    required=True,
    help="owner: everything; editor: posts, mail and subscribers; viewer: read-only",
)
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (one line)")
@pass_app
def add(app: AppContext, email: str, role: str, password_stdin: bool) -> None:
    """Make a desk account for EMAIL."""
    password = _password(password_stdin)
    with app.db.transaction() as session:
        user = desk_accounts.add(session, Actor.cli(), email, role, password)
        click.echo(f"added {shown(user.email)} as {user.role}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON for programs")
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """Every desk account with its role and last sign-in."""
    with app.db.transaction() as session:
        rows = [
            {
                "email": u.email,
                "role": u.role,
                "totp": u.totp_secret is not None,
                "created_at": u.created_at,
                "last_login_at": u.last_login_at,
            }
            for u in desk_accounts.listed(session)
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no desk accounts yet: digest users add EMAIL --role owner")
    for row in rows:
        last = (
            row["last_login_at"].isoformat(timespec="minutes") if row["last_login_at"] else "never"
        )
        factor = "  2FA" if row["totp"] else ""
        click.echo(f"{shown(row['email'])}  {row['role']}  last sign-in: {last}{factor}")


@users.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(["owner", "editor", "viewer"], case_sensitive=False))
@pass_app
def role(app: AppContext, email: str, role: str) -> None:
    """Give EMAIL's account another ROLE."""
    with app.db.transaction() as session:
        user = desk_accounts.set_role(session, Actor.cli(), email, role)
        click.echo(f"{shown(user.email)} is now {user.role}")


@users.command("passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (one line)")
@pass_app
def passwd(app: AppContext, email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL's account (its sessions end)."""
    with app.db.transaction() as session:
        desk_accounts.get(session, email)  # before asking: no password typed for nobody
    password = _password(password_stdin)
    with app.db.transaction() as session:
        user = desk_accounts.set_password(session, Actor.cli(), email, password)
        click.echo(f"new password set for {shown(user.email)}; its sessions have ended")


@users.command("remove")
@click.argument("email")
@pass_app
def remove(app: AppContext, email: str) -> None:
    """Delete EMAIL's account and end its sessions."""
    with app.db.transaction() as session:
        desk_accounts.remove(session, Actor.cli(), email)
    click.echo(f"removed {shown(email.strip())}")


@users.command("totp-reset")
@click.argument("email")
@pass_app
def totp_reset(app: AppContext, email: str) -> None:
    """Remove EMAIL's second factor (lost phone) and end its sessions."""
    with app.db.transaction() as session:
        user = desk_accounts.reset_totp(session, Actor.cli(), email)
        click.echo(f"second factor removed for {shown(user.email)}; its sessions have ended")
