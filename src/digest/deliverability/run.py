"""``digest check`` as one call: every check, in the order an operator would fix them.

Sending never looks DNS up; only this does. A check that cannot run (the store missing, DNS
not answering) is itself a finding, so one run always shows everything it could learn.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import datetime

from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.deliverability import report as r
from digest.deliverability.dns_checks import dns_findings
from digest.deliverability.list_health import health_findings, measure
from digest.deliverability.lookup import DEFAULT_TIMEOUT, Lookup
from digest.deliverability.report import Finding, Report
from digest.deliverability.sample import sample_findings
from digest.deliverability.site_checks import site_findings
from digest.deliverability.smtp_check import smtp_findings
from digest.errors import DigestError


def run_checks(
    settings: Settings,
    open_store: Callable[[], Database],
    *,
    resolver: str | None = None,
    dns_timeout: float = DEFAULT_TIMEOUT,
    tls_context: ssl.SSLContext | None = None,
    spamassassin: bool = True,
    now: datetime | None = None,
) -> Report:
    """Run every check: DNS (through ``resolver``, HOST[:PORT], else the system's), the site,
    the SMTP relay, the list's health and a sample digest."""
    findings = dns_findings(settings, Lookup(resolver, timeout=dns_timeout))
    findings += site_findings(settings)
    findings += asyncio.run(smtp_findings(settings, tls_context=tls_context))
    findings += _store_findings(settings, open_store, now or utcnow(), spamassassin)
    return Report(findings)


def _store_findings(
    settings: Settings, open_store: Callable[[], Database], now: datetime, spamassassin: bool
) -> list[Finding]:
    try:
        db = open_store()
    except DigestError as exc:
        return [r.fail("store", str(exc), "run digest db upgrade, or set DIGEST_DATABASE_URL")]
    with db.transaction() as session:
        health = measure(session, now)
    return health_findings(health) + sample_findings(db, settings, now, spamassassin=spamassassin)
