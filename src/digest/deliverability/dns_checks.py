"""The DNS half of ``digest check``: SPF, the DKIM keys, DMARC and its alignment, the MX of
the return path's domain. Each check is one finding; a timeout is reported as a timeout."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial

from digest.config import Settings
from digest.deliverability import report as r
from digest.deliverability.dkim_key import (
    ConfiguredKey,
    KeyUnusable,
    configured_keys,
    public_key_forms,
    published_key,
)
from digest.deliverability.domains import aligned, domain_of, organizational
from digest.deliverability.lookup import DnsFailure, DnsTimeout, Lookup
from digest.deliverability.records import (
    SPF_LOOKUP_LIMIT,
    RecordError,
    Spf,
    is_spf,
    parse_dmarc,
    parse_spf,
)
from digest.deliverability.report import Finding

_RETRY = "check that the resolver answers (dig @RESOLVER NAME), then run digest check again"


def dns_findings(settings: Settings, lookup: Lookup) -> list[Finding]:
    """Every DNS check, in the order an operator would fix them."""
    envelope = domain_of(settings.envelope_from)
    keys = configured_keys(settings)
    findings = [_guarded("SPF", partial(check_spf, lookup, envelope))]
    findings += [_guarded(f"DKIM {k.selector}", partial(check_dkim, lookup, k)) for k in keys]
    if not keys:
        findings.append(
            r.skip("DKIM", "digest does not sign (DIGEST_DKIM_* unset): your relay must")
        )
    findings.append(_guarded("DMARC", partial(check_dmarc, lookup, settings, keys)))
    findings.append(_guarded("MX", partial(check_mx, lookup, envelope)))
    return findings


def _guarded(name: str, check: Callable[[], Finding]) -> Finding:
    """Run a check; a DNS timeout or server failure becomes its finding, named as such."""
    try:
        return check()
    except DnsTimeout as exc:
        return r.fail(name, f"DNS timeout: {exc}", _RETRY)
    except DnsFailure as exc:
        return r.fail(name, f"DNS error: {exc}", _RETRY)


def check_spf(lookup: Lookup, domain: str) -> Finding:
    """The envelope domain has exactly one SPF record, and it parses."""
    records = [t for t in lookup.txt(domain) if is_spf(t)]
    if not records:
        return r.fail(
            "SPF",
            f"no SPF record at {domain}",
            f'publish a TXT record at {domain}: "v=spf1 include:YOUR-RELAY -all" '
            "(your relay's documentation names the include)",
        )
    if len(records) > 1:
        return r.fail(
            "SPF",
            f"{len(records)} SPF records at {domain}: receivers treat that as an error (permerror)",
            f"merge them into one TXT record at {domain}",
        )
    try:
        spf = parse_spf(records[0])
    except RecordError as exc:
        return r.fail("SPF", f"the SPF record at {domain} is invalid: {exc}", "correct the record")
    if spf.all_qualifier == "+":
        return r.fail(
            "SPF", f"{domain}'s SPF ends in +all: anyone may send as it", "end it with -all or ~all"
        )
    lookups = _lookups(lookup, spf, {domain})
    if lookups > SPF_LOOKUP_LIMIT:
        return r.fail(
            "SPF",
            f"{domain}'s SPF record needs more than {SPF_LOOKUP_LIMIT} DNS look-ups with its "
            "includes: receivers stop there and treat it as an error (permerror)",
            "drop the includes of services you no longer send through, or replace some by "
            "their ip4:/ip6: ranges",
        )
    if spf.all_qualifier is None and spf.redirect is None:
        return r.warn(
            "SPF",
            f"{domain}'s SPF record has no all: {records[0]}",
            "end it with -all or ~all so receivers know what to do with others",
        )
    return r.ok("SPF", f"{domain}: {records[0]}")


def _lookups(lookup: Lookup, spf: Spf, seen: set[str]) -> int:
    """The DNS look-ups evaluating ``spf`` costs, includes followed; counting stops once past
    the limit. An include that cannot be read counts only itself."""
    total = spf.lookups
    for domain in spf.includes:
        if total > SPF_LOOKUP_LIMIT or domain in seen or "%" in domain:
            continue  # past the limit already, a loop, or a macro only a receiver can expand
        seen.add(domain)
        records = [t for t in lookup.txt(domain) if is_spf(t)]
        if len(records) == 1:
            with contextlib.suppress(RecordError):  # the include's own error is its owner's
                total += _lookups(lookup, parse_spf(records[0]), seen)
    return total


def check_dkim(lookup: Lookup, key: ConfiguredKey) -> Finding:
    """The selector's record exists and publishes the public half of the configured key."""
    name = f"DKIM {key.selector}"
    try:
        expected = public_key_forms(key)
    except KeyUnusable as exc:
        return r.fail(name, str(exc), "point the DKIM key file setting at a readable PEM key")
    keygen = f"digest dkim keygen --selector {key.selector}" + (
        " --ed25519" if key.algorithm == "ed25519" else ""
    )
    records = [t for t in lookup.txt(key.record_name) if "p=" in t]
    if not records:
        return r.fail(
            name,
            f"no DKIM record at {key.record_name}",
            f"publish the TXT record that {keygen} printed for this key at {key.record_name}",
        )
    published = {published_key(t) for t in records}
    if published & expected:
        return r.ok(name, f"{key.record_name} publishes the {key.algorithm} key digest signs with")
    detail = (
        "the record revokes the key (empty p=)"
        if b"" in published
        else "the record's p= is not the public half of the configured key"
    )
    return r.fail(
        name,
        f"{key.record_name}: {detail}",
        f"publish this key's record (as {keygen} printed it), or configure the key it publishes",
    )


def newsletter_dmarc_findings(
    settings: Settings, lookup: Lookup, senders: dict[str, str]
) -> list[Finding]:
    """The DMARC check of each newsletter whose From is on a domain of its own (slug to
    domain): its mail is signed and bounced as the site's, and must align all the same."""
    keys = configured_keys(settings)
    return [
        _guarded(
            f"DMARC {slug}",
            partial(check_dmarc, lookup, settings, keys, from_domain=domain, name=f"DMARC {slug}"),
        )
        for slug, domain in senders.items()
        if domain != settings.from_domain
    ]


def check_dmarc(
    lookup: Lookup,
    settings: Settings,
    keys: list[ConfiguredKey],
    *,
    from_domain: str | None = None,
    name: str = "DMARC",
) -> Finding:
    """A DMARC record covers the From domain (the site's, or ``from_domain``: a newsletter's),
    with its policy, and From aligns with DKIM d= or the envelope domain."""
    from_domain = from_domain or settings.from_domain
    record, where = _dmarc_record(lookup, from_domain)
    if record is None:
        return r.fail(
            name,
            f"no DMARC record at _dmarc.{from_domain}: "
            "Gmail and Yahoo refuse bulk mail without one",
            f'publish a TXT record at _dmarc.{from_domain}: "v=DMARC1; p=none; '
            f'rua=mailto:dmarc@{from_domain}", then move to p=quarantine',
        )
    try:
        dmarc = parse_dmarc(record)
    except RecordError as exc:
        return r.fail(name, f"the record at {where} is invalid: {exc}", "correct the record")
    envelope = domain_of(settings.envelope_from)
    by_envelope = aligned(from_domain, envelope, strict=dmarc.strict_spf)
    dkim_domains = sorted({k.domain for k in keys})
    by_dkim = [d for d in dkim_domains if aligned(from_domain, d, strict=dmarc.strict_dkim)]
    if not (by_envelope or by_dkim):
        signed = (
            f"DKIM d={', '.join(dkim_domains)}" if dkim_domains else "no DKIM signature of digest's"
        )
        return r.fail(
            name,
            f"From {from_domain} aligns with neither the envelope domain {envelope} nor {signed}",
            f"set DIGEST_RETURN_PATH to an address at {organizational(from_domain)}, or sign with "
            f"DIGEST_DKIM_DOMAIN={from_domain} "
            f"(or make sure your relay signs with d={from_domain})",
        )
    how = ", ".join(
        ([f"envelope {envelope}"] if by_envelope else []) + [f"DKIM d={d}" for d in by_dkim]
    )
    detail = f"{where}: p={dmarc.policy}; From {from_domain} aligns with {how}"
    if dmarc.policy == "none":
        return r.warn(
            name,
            detail,
            "once reports show your mail passes, move to p=quarantine: p=none protects nobody",
        )
    return r.ok(name, detail)


def _dmarc_record(lookup: Lookup, domain: str) -> tuple[str | None, str]:
    """The DMARC record that governs ``domain``: its own, else its organisational domain's."""
    for candidate in dict.fromkeys([domain, organizational(domain)]):
        name = f"_dmarc.{candidate}"
        records = [t for t in lookup.txt(name) if t.strip().lower().startswith("v=dmarc1")]
        if records:
            return records[0], name
    return None, f"_dmarc.{domain}"


def check_mx(lookup: Lookup, domain: str) -> Finding:
    """The return path's domain takes mail: bounce reports must reach digest."""
    records = lookup.mx(domain)
    if not records or all(m.host in ("", ".") for m in records):
        return r.fail(
            "MX",
            f"{domain} (the return path's domain) has no MX: bounce reports cannot come back",
            f"publish an MX record for {domain}, or set DIGEST_RETURN_PATH to an address "
            "whose domain takes mail",
        )
    return r.ok("MX", f"{domain}: " + ", ".join(f"{m.preference} {m.host}" for m in records))
