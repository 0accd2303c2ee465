"""``digest check``: the deliverability self-test, one line per check, ✓, ! or ✗ with the fix."""

from __future__ import annotations

import sys

import click

from digest.cli.context import AppContext, echo_json, pass_app, shown
from digest.deliverability.lookup import DEFAULT_TIMEOUT, split_server
from digest.deliverability.report import MARKS
from digest.deliverability.run import run_checks
from digest.errors import InvalidInput


def _server(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        split_server(value)
    except ValueError as exc:
        raise InvalidInput(f"--resolver: {exc}") from None
    return value


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for programs")
@click.option(
    "--resolver",
    metavar="HOST[:PORT]",
    callback=_server,
    help="ask this DNS server (an IP address) instead of the system's, e.g. 1.1.1.1",
)
@click.option(
    "--dns-timeout",
    type=click.FloatRange(0.1, 60),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="seconds allowed for each DNS look-up",
)
@pass_app
def check(app: AppContext, as_json: bool, resolver: str | None, dns_timeout: float) -> None:
    """Check deliverability: DNS, the site, the SMTP relay, the list's health, a sample digest.

    Exit 0 when every check passes (warnings included), 1 when any fails or there was no
    store to check the list's health and a sample digest against (the DNS, site and SMTP
    checks still run: they are worth having before any store exists).
    """
    report = run_checks(app.settings, lambda: app.db, resolver=resolver, dns_timeout=dns_timeout)
    if as_json:
        echo_json(report.as_dict())
    else:
        for finding in report.findings:
            click.echo(f"{MARKS[finding.level]} {finding.name}: {shown(finding.detail)}")
            if finding.fix:
                click.echo(f"    fix: {shown(finding.fix)}")
        summary = report.summary()
        click.echo(
            f"{summary['ok']} passed, {summary['warn']} warnings, {summary['fail']} failed, "
            f"{summary['skip']} not checked"
        )
    if not report.store_checked and report.passed:
        click.echo("error: no store: the checks that need one were skipped", err=True)
    if report.exit_code:
        sys.exit(report.exit_code)
