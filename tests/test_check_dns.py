"""``digest check``'s DNS checks against an authoritative server on loopback: a good zone, a
zone with each fault, and a server that never answers (a timeout, not a missing record)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.config import Settings
from digest.deliverability.dkim_key import configured_keys
from digest.deliverability.dns_checks import dns_findings, newsletter_dmarc_findings
from digest.deliverability.domains import aligned, organizational
from digest.deliverability.lookup import Lookup, split_server
from digest.deliverability.report import Finding, Level
from tests.support.dns_server import DnsServer, Zone, dns_server, silent_dns_server  # noqa: F401

FROM = "The Daily Brief <news@brief.example>"
SPF = "v=spf1 ip4:192.0.2.0/24 include:relay.example -all"


class DkimSettings(Settings):
    """Settings with the signing keys, as the DKIM settings will give them."""

    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None
    dkim_ed25519_selector: str | None = None
    dkim_ed25519_key_file: Path | None = None


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def rsa_record(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def ed25519_record(key: ed25519.Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def signing(make_settings, tmp_path: Path, rsa_key, ed_key) -> Callable[..., Settings]:  # type: ignore[no-untyped-def]
    """Settings that sign with both keys (their files in tmp_path), overrides applied."""

    def build(**overrides: object) -> Settings:
        base = make_settings(from_=FROM, **overrides).model_dump()
        keys = {
            "dkim_selector": "s2026",
            "dkim_key_file": _pem(rsa_key, tmp_path / "rsa.pem"),
            "dkim_ed25519_selector": "e2026",
            "dkim_ed25519_key_file": _pem(ed_key, tmp_path / "ed.pem"),
        }
        # The settings class has the DKIM fields now: the dump carries them, unset.
        return DkimSettings(**(base | keys))

    return build


def good_zone(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> Zone:
    return {
        "brief.example": [
            ("TXT", "google-site-verification=abc"),
            ("TXT", SPF),
            ("MX", (10, "mx1.brief.example")),
            ("MX", (20, "mx2.brief.example")),
        ],
        "_dmarc.brief.example": [("TXT", "v=DMARC1; p=quarantine; rua=mailto:d@brief.example")],
        "s2026._domainkey.brief.example": [("TXT", rsa_record(rsa_key))],
        "e2026._domainkey.brief.example": [("TXT", ed25519_record(ed_key))],
    }


@pytest.fixture
def zone(
    dns_server: DnsServer,  # noqa: F811
    rsa_key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
) -> Zone:
    """The good zone, served by ``dns_server``: a test spoils it in place."""
    dns_server.zone = good_zone(rsa_key, ed_key)
    return dns_server.zone


def by_name(findings: list[Finding]) -> dict[str, Finding]:
    return {f.name: f for f in findings}


def _found(server: DnsServer, settings: Settings) -> dict[str, Finding]:
    return by_name(dns_findings(settings, Lookup(server.address, timeout=3)))


def test_a_good_zone_passes_every_dns_check(
    dns_server: DnsServer,  # noqa: F811
    signing: Callable[..., Settings],
    zone: Zone,
) -> None:
    found = _found(dns_server, signing())
    assert list(found) == ["SPF", "DKIM s2026", "DKIM e2026", "DMARC", "MX"]
    assert all(f.level is Level.OK for f in found.values()), found
    assert SPF in found["SPF"].detail
    assert "rsa" in found["DKIM s2026"].detail and "ed25519" in found["DKIM e2026"].detail
    assert "p=quarantine" in found["DMARC"].detail
    assert "aligns with envelope brief.example, DKIM d=brief.example" in found["DMARC"].detail
    assert found["MX"].detail == "brief.example: 10 mx1.brief.example, 20 mx2.brief.example"


def _without(zone: Zone, name: str, prefix: str) -> None:
    zone[name] = [(t, v) for t, v in zone[name] if not (t == "TXT" and v.startswith(prefix))]


def _spf(zone: Zone, record: str) -> None:
    _without(zone, "brief.example", "v=spf1")
    zone["brief.example"].append(("TXT", record))


def _too_many_lookups(zone: Zone) -> None:
    # 1 (include) + 3 (a, mx, include) + 5 (a, mx, exists, ptr, redirect) + 4 (mx, a and two
    # includes) + 1 (a) = 14, through a chain that also loops back to the first include.
    _spf(zone, "v=spf1 include:one.example -all")
    zone["one.example"] = [("TXT", "v=spf1 a mx include:two.example ~all")]
    zone["two.example"] = [("TXT", "v=spf1 a mx exists:x.example ptr redirect=three.example")]
    zone["three.example"] = [("TXT", "v=spf1 mx a include:one.example include:four.example")]
    zone["four.example"] = [("TXT", "v=spf1 a -all")]


def _other_key(zone: Zone) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    zone["s2026._domainkey.brief.example"] = [("TXT", rsa_record(other))]


FAULTS: dict[str, tuple[Callable[[Zone], None], str, Level, str]] = {
    "no SPF": (lambda z: _without(z, "brief.example", "v=spf1"), "SPF", Level.FAIL,
               "no SPF record at brief.example"),
    "two SPF": (lambda z: z["brief.example"].append(("TXT", "v=spf1 mx -all")), "SPF",
                Level.FAIL, "2 SPF records at brief.example"),
    "bad SPF": (lambda z: _spf(z, "v=spf1 ipv4:192.0.2.1 -all"), "SPF", Level.FAIL,
                "'ipv4:192.0.2.1' is not an SPF mechanism"),
    "bad SPF address": (lambda z: _spf(z, "v=spf1 ip4:300.0.0.1 -all"), "SPF", Level.FAIL,
                        "'ip4:300.0.0.1' is not an address"),
    "SPF over 10 look-ups": (_too_many_lookups, "SPF", Level.FAIL,
                             "needs more than 10 DNS look-ups"),
    "SPF +all": (lambda z: _spf(z, "v=spf1 +all"), "SPF", Level.FAIL, "anyone may send"),
    "no DMARC": (lambda z: z.pop("_dmarc.brief.example"), "DMARC", Level.FAIL,
                 "no DMARC record at _dmarc.brief.example"),
    "DMARC p=none": (lambda z: z.update({"_dmarc.brief.example": [("TXT", "v=DMARC1; p=none")]}),
                     "DMARC", Level.WARN, "p=none"),
    "bad DMARC": (lambda z: z.update({"_dmarc.brief.example": [("TXT", "v=DMARC1; p=maybe")]}),
                  "DMARC", Level.FAIL, "p=maybe is not none, quarantine or reject"),
    "no MX": (lambda z: z.update({"brief.example": [("TXT", SPF)]}), "MX", Level.FAIL,
              "brief.example (the return path's domain) has no MX"),
    "DKIM key mismatch": (_other_key, "DKIM s2026", Level.FAIL,
                          "p= is not the public half of the configured key"),
    "DKIM key revoked": (lambda z: z.update({"s2026._domainkey.brief.example": [
                             ("TXT", "v=DKIM1; k=rsa; p=")]}),
                         "DKIM s2026", Level.FAIL, "revokes the key"),
    "no DKIM record": (lambda z: z.pop("e2026._domainkey.brief.example"), "DKIM e2026",
                       Level.FAIL, "no DKIM record at e2026._domainkey.brief.example"),
}  # fmt: skip


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_fails_its_own_check_with_a_fix_and_no_other(
    fault: str,
    dns_server: DnsServer,  # noqa: F811
    signing: Callable[..., Settings],
    zone: Zone,
) -> None:
    spoil, name, level, detail = FAULTS[fault]
    spoil(zone)
    found = _found(dns_server, signing())
    assert found[name].level is level, found[name]
    assert detail in found[name].detail
    assert found[name].fix, "every failure and warning says how to fix it"
    others = {n: f.level for n, f in found.items() if n != name}
    assert set(others.values()) == {Level.OK}, others


def test_from_aligned_with_neither_the_envelope_nor_dkim_fails_dmarc(
    dns_server: DnsServer,  # noqa: F811
    make_settings,  # type: ignore[no-untyped-def]
    zone: Zone,
) -> None:
    zone["esp-mail.example"] = [("TXT", "v=spf1 -all"), ("MX", (10, "mx.esp-mail.example"))]
    settings = make_settings(from_=FROM, return_path="bounces@esp-mail.example")
    found = _found(dns_server, settings)
    dmarc = found["DMARC"]
    assert dmarc.level is Level.FAIL
    assert "aligns with neither the envelope domain esp-mail.example" in dmarc.detail
    assert "DIGEST_RETURN_PATH" in dmarc.fix
    assert found["DKIM"].level is Level.SKIP  # digest does not sign here


def test_a_subdomain_envelope_aligns_relaxed_but_not_strict(
    dns_server: DnsServer,  # noqa: F811
    make_settings,  # type: ignore[no-untyped-def]
    zone: Zone,
) -> None:
    zone["bounce.brief.example"] = [("TXT", SPF), ("MX", (10, "mx.brief.example"))]
    settings = make_settings(from_=FROM, return_path="b@bounce.brief.example")
    lookup = Lookup(dns_server.address, timeout=3)
    assert by_name(dns_findings(settings, lookup))["DMARC"].level is Level.OK
    zone["_dmarc.brief.example"] = [("TXT", "v=DMARC1; p=reject; aspf=s")]
    assert by_name(dns_findings(settings, lookup))["DMARC"].level is Level.FAIL


def test_a_subdomain_from_falls_back_to_the_organisational_dmarc_record(
    dns_server: DnsServer,  # noqa: F811
    make_settings,  # type: ignore[no-untyped-def]
    zone: Zone,
) -> None:
    zone["news.brief.example"] = [("TXT", SPF), ("MX", (10, "mx.brief.example"))]
    settings = make_settings(from_="Brief <a@news.brief.example>")
    dmarc = _found(dns_server, settings)["DMARC"]
    assert dmarc.level is Level.OK and dmarc.detail.startswith("_dmarc.brief.example: p=quarantine")


def test_a_dns_timeout_is_reported_as_a_timeout_not_a_missing_record(
    silent_dns_server: str,  # noqa: F811
    signing: Callable[..., Settings],
) -> None:
    found = dns_findings(signing(), Lookup(silent_dns_server, timeout=0.5))
    assert [f.name for f in found] == ["SPF", "DKIM s2026", "DKIM e2026", "DMARC", "MX"]
    for finding in found:
        assert finding.level is Level.FAIL
        assert finding.detail.startswith("DNS timeout: no answer for "), finding
        assert "no SPF" not in finding.detail and "no DMARC" not in finding.detail
        assert "resolver" in finding.fix


def test_an_unreadable_key_file_fails_its_dkim_check_and_names_the_file(
    dns_server: DnsServer,  # noqa: F811
    signing: Callable[..., Settings],
    rsa_key: rsa.RSAPrivateKey,
    ed_key: ed25519.Ed25519PrivateKey,
    tmp_path: Path,
) -> None:
    settings = signing()
    (tmp_path / "rsa.pem").write_text("not a key")
    (tmp_path / "ed.pem").unlink()
    found = _found(dns_server, settings)
    assert found["DKIM s2026"].level is Level.FAIL
    assert "rsa.pem holds no unencrypted PEM private key" in found["DKIM s2026"].detail
    assert found["DKIM e2026"].level is Level.FAIL
    assert "cannot read" in found["DKIM e2026"].detail and "ed.pem" in found["DKIM e2026"].detail


def test_the_keys_come_from_the_dkim_settings_and_default_to_the_from_domain(
    signing: Callable[..., Settings],
    make_settings,  # type: ignore[no-untyped-def]
) -> None:
    keys = configured_keys(signing())
    assert [(k.algorithm, k.record_name) for k in keys] == [
        ("rsa", "s2026._domainkey.brief.example"),
        ("ed25519", "e2026._domainkey.brief.example"),
    ]
    assert configured_keys(make_settings(from_=FROM)) == []


def test_ten_look_ups_are_allowed(
    dns_server: DnsServer,  # noqa: F811
    make_settings,  # type: ignore[no-untyped-def]
    zone: Zone,
) -> None:
    _spf(zone, "v=spf1 a mx include:one.example -all")  # 3 + 7
    zone["one.example"] = [("TXT", "v=spf1 " + " ".join(["a"] * 7) + " -all")]
    assert _found(dns_server, make_settings(from_=FROM))["SPF"].level is Level.OK
    zone["one.example"] = [("TXT", "v=spf1 " + " ".join(["a"] * 8) + " -all")]
    assert _found(dns_server, make_settings(from_=FROM))["SPF"].level is Level.FAIL


def test_organisational_domains_and_alignment() -> None:
    assert organizational("news.brief.example") == "brief.example"
    assert organizational("news.example.co.uk") == "example.co.uk"
    assert organizational("example.com") == "example.com"
    assert aligned("news.example.com", "bounces.example.com")
    assert not aligned("news.example.com", "bounces.example.com", strict=True)
    assert not aligned("example.co.uk", "other.co.uk")


@pytest.mark.parametrize(
    ("domain", "organisation"),
    [
        ("a.b.example.co.uk", "example.co.uk"),
        ("News.Example.COM.", "example.com"),
        ("mail.example.com.au", "example.com.au"),
        ("a.b.city.kawasaki.jp", "city.kawasaki.jp"),  # an exception rule of the list
        ("x.y.kawasaki.jp", "x.y.kawasaki.jp"),  # *.kawasaki.jp: y.kawasaki.jp is a suffix
        ("news.x.github.io", "x.github.io"),  # the private section counts
        ("bounces.example.org.uk", "example.org.uk"),
        ("news.brief.example", "brief.example"),  # an unknown TLD is its own suffix
        ("co.uk", "co.uk"),
        ("nachrichten.bücher.de", "bücher.de"),
        ("nachrichten.xn--bcher-kva.de", "xn--bcher-kva.de"),
    ],
)
def test_the_organisational_domain_comes_from_the_public_suffix_list(
    domain: str, organisation: str
) -> None:
    assert organizational(domain) == organisation


def test_subdomains_of_a_private_suffix_belong_to_different_people() -> None:
    assert not aligned("news.alice.github.io", "mail.bob.github.io")
    assert aligned("news.alice.github.io", "alice.github.io")
    assert not aligned("example.ck", "other.ck")  # *.ck: every name is its own


def test_resolver_addresses() -> None:
    assert split_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert split_server("1.1.1.1") == ("1.1.1.1", 53)
    assert split_server("[::1]:5353") == ("::1", 5353)
    assert split_server("2001:db8::1") == ("2001:db8::1", 53)
    with pytest.raises(ValueError, match="bad port"):
        split_server("127.0.0.1:99999")


def test_a_newsletter_from_another_domain_gets_its_own_dmarc_check(
    dns_server: DnsServer,  # noqa: F811
    signing: Callable[..., Settings],
    zone: Zone,
) -> None:
    """Its mail is signed and bounced as the site's: a domain of its own must align too."""
    zone["_dmarc.sports.example"] = [("TXT", "v=DMARC1; p=reject")]
    senders = {"digest": "brief.example", "desk": "news.brief.example", "sports": "sports.example"}
    found = by_name(
        newsletter_dmarc_findings(signing(), Lookup(dns_server.address, timeout=3), senders)
    )
    assert list(found) == ["DMARC desk", "DMARC sports"]  # the site's own From is checked once
    assert found["DMARC desk"].level is Level.OK  # a subdomain aligns (relaxed)
    sports = found["DMARC sports"]
    assert sports.level is Level.FAIL
    assert "From sports.example aligns with neither" in sports.detail
    assert "DIGEST_DKIM_DOMAIN=sports.example" in sports.fix
