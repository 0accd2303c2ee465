"""The site half of ``digest check``: one-click unsubscribe needs DIGEST_BASE_URL on https and
reachable, and DIGEST_FROM must be a domain the operator controls."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from digest.config import Settings
from digest.deliverability import report as r
from digest.deliverability.domains import is_free_mail, organizational
from digest.deliverability.report import Finding

#: Seconds allowed for GET /healthz.
HEALTH_TIMEOUT = 10.0


def site_findings(settings: Settings) -> list[Finding]:
    """The base URL's scheme and health, and the From domain."""
    return [_https(settings.base_url), _healthz(settings.base_url), _from_domain(settings)]


def _https(base_url: str) -> Finding:
    if urlsplit(base_url).scheme == "https":
        return r.ok("base URL https", base_url)
    return r.fail(
        "base URL https",
        f"DIGEST_BASE_URL is {base_url}: Gmail and Yahoo offer one-click unsubscribe only "
        "over https",
        "serve digest behind https and set DIGEST_BASE_URL=https://...",
    )


def _healthz(base_url: str) -> Finding:
    url = f"{base_url}/healthz"
    fix = "start digest serve behind that URL and let the internet reach it"
    try:
        response = httpx.get(url, timeout=HEALTH_TIMEOUT, follow_redirects=False)
    except httpx.TimeoutException:
        return r.fail("base URL answers", f"{url}: no answer within {HEALTH_TIMEOUT:g} s", fix)
    except httpx.HTTPError as exc:
        return r.fail("base URL answers", f"{url} cannot be reached: {exc}", fix)
    if response.status_code != 200:
        return r.fail("base URL answers", f"{url} answered {response.status_code}", fix)
    return r.ok("base URL answers", f"{url} answered 200")


def _from_domain(settings: Settings) -> Finding:
    domain = settings.from_domain
    if is_free_mail(domain):
        return r.fail(
            "From domain",
            f"DIGEST_FROM is at {domain}, a free-mail provider whose DMARC policy refuses or "
            "quarantines mail other servers send in its name",
            "send from an address at a domain you control, e.g. news@YOUR-SITE",
        )
    return r.ok("From domain", f"{domain} (organisational domain {organizational(domain)})")
