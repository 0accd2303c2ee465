"""``digest check`` as one call: every check, in the order an operator would fix them.

Sending never looks DNS up; only this does. A check that cannot run (the store missing, DNS
not answering) is itself a finding, so one run always shows everything it could learn: the DNS,
site and SMTP checks are worth running before any store exists. With no store, its checks are
one skipped finding and the report says so (``Report.store_checked``, exit 69).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import datetime
from email.utils import parseaddr

from digest import newsletters
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.deliverability import report as r
from digest.deliverability.dns_checks import dns_findings, newsletter_dmarc_findings
from digest.deliverability.domains import domain_of
from digest.deliverability.list_health import health_findings, measure
from digest.deliverability.lookup import DEFAULT_TIMEOUT, Lookup
from digest.deliverability.report import Finding, Report
from digest.deliverability.sample import sample_findings
from digest.deliverability.site_checks import site_findings
from digest.deliverability.smtp_check import smtp_findings
from digest.errors import StoreUnavailable
from digest.newsletter_config import configure


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
    lookup = Lookup(resolver, timeout=dns_timeout)
    findings = dns_findings(settings, lookup)
    findings += site_findings(settings)
    findings += asyncio.run(smtp_findings(settings, tls_context=tls_context))
    try:
        findings += _store_findings(settings, open_store, now or utcnow(), spamassassin, lookup)
    except StoreUnavailable as exc:
        skipped = "the list's health, each newsletter's DMARC and the sample digest need it"
        findings.append(
            r.Finding(
                "store",
                r.Level.SKIP,
                f"not checked: {exc} ({skipped})",
                "run digest db upgrade, or set DIGEST_DATABASE_URL",
            )
        )
        return Report(findings, store_checked=False)
    return Report(findings)


def _store_findings(
    settings: Settings,
    open_store: Callable[[], Database],
    now: datetime,
    spamassassin: bool,
    lookup: Lookup,
) -> list[Finding]:
    db = open_store()
    with db.transaction() as session:
        health = measure(session, now)
        senders = {
            n.slug: domain_of(parseaddr(configure(n, settings).sender)[1])
            for n in newsletters.listed(session)
        }
    return (
        newsletter_dmarc_findings(settings, lookup, senders)
        + health_findings(health)
        + sample_findings(db, settings, now, spamassassin=spamassassin)
    )
