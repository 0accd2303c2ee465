"""``digest dkim keygen`` and the DKIM settings: a key written 0600 whose printed record verifies
what it signs; a missing, unreadable or wrong key or a bad selector stops start-up (exit 78)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from digest.mail.dkim import DkimKey, DkimSigner
from digest.mail.dkim_keys import load_key
from tests.support.cli import run
from tests.support.dkim import DOMAIN, Dns, Keys, dkim_keys, verify_all  # noqa: F401

MESSAGE = (
    f"From: News <news@{DOMAIN}>\r\nTo: ann@example.org\r\nSubject: Hi\r\n"
    "Date: Mon, 30 Nov 2026 07:00:00 +0000\r\nMessage-ID: <1@brief.example>\r\n\r\nHello\r\n"
).encode()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_settings) -> Path:  # type: ignore[no-untyped-def]
    make_settings()  # clears DIGEST_* and moves into tmp_path
    monkeypatch.setenv("DIGEST_FROM", f"The Daily Brief <news@{DOMAIN}>")
    monkeypatch.setenv("DIGEST_VAR_DIR", str(tmp_path / "var"))
    return tmp_path


@pytest.mark.parametrize("ed25519", [False, True])
def test_keygen_writes_a_private_key_0600_and_prints_a_record_that_verifies_it(
    cli_env: Path, capsys: pytest.CaptureFixture[str], ed25519: bool
) -> None:
    r = run(capsys, "dkim", "keygen", "--selector", "s2026", *(["--ed25519"] if ed25519 else []))
    assert r.code == 0, r
    path = cli_env / "var" / "dkim-s2026.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in r.err and "DIGEST_DKIM" in r.err
    (line,) = r.out.splitlines()
    assert line.startswith(f's2026._domainkey.{DOMAIN} TXT "v=DKIM1; k=')
    assert ("k=ed25519" in line) == ed25519
    if not ed25519:
        assert line.count('" "') == 1  # an RSA-2048 record is longer than one 255-byte string
    dns = Dns()
    dns.publish_zone_line(line)
    key = load_key(path, ed25519=ed25519)
    signed = DkimSigner((DkimKey("s2026", DOMAIN, key),)).sign(MESSAGE, 1796000000)
    assert verify_all(signed, dns) == [True]
    # Nothing else was made: keygen needs no store and makes no secret key.
    assert sorted(p.name for p in (cli_env / "var").iterdir()) == ["dkim-s2026.pem"]


def test_keygen_never_overwrites_a_key(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli_env / "live.pem"
    out.write_text("the key published in DNS today")
    r = run(capsys, "dkim", "keygen", "--selector", "s2", "--out", str(out))
    assert r.code == 65 and "exists" in r.err and len(r.err.strip().splitlines()) == 1
    assert out.read_text() == "the key published in DNS today"


def test_keygen_refuses_a_bad_selector(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "dkim", "keygen", "--selector", "no spaces; v=DKIM1")
    assert r.code == 65 and "--selector" in r.err and "Traceback" not in r.err
    assert not (cli_env / "var").exists() or not list((cli_env / "var").iterdir())


def test_keygen_works_while_the_configured_key_file_does_not_exist_yet(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DKIM_SELECTOR", "s3")
    monkeypatch.setenv("DIGEST_DKIM_KEY_FILE", str(cli_env / "dkim.pem"))
    r = run(capsys, "dkim", "keygen", "--selector", "s3", "--out", str(cli_env / "dkim.pem"))
    assert r.code == 0, r
    assert run(capsys, "settings").code == 0  # and now the settings load with it


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY_FILE": "missing.pem"},
         "DIGEST_DKIM_KEY_FILE: cannot read missing.pem"),
        ({"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY_FILE": "garbage.pem"},
         "DIGEST_DKIM_KEY_FILE: garbage.pem holds no unencrypted PEM private key"),
        ({"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY_FILE": "{ed}"},
         "is not an RSA key"),
        ({"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY_FILE": "{rsa}",
          "DIGEST_DKIM_ED25519_SELECTOR": "e1", "DIGEST_DKIM_ED25519_KEY_FILE": "{rsa}"},
         "DIGEST_DKIM_ED25519_KEY_FILE: {rsa} is not an Ed25519 key"),
        ({"DIGEST_DKIM_SELECTOR": "s1"},
         "DIGEST_DKIM_KEY_FILE: not set, and DIGEST_DKIM_SELECTOR is"),
        ({"DIGEST_DKIM_KEY_FILE": "{rsa}"}, "DIGEST_DKIM_SELECTOR: not set"),
        ({"DIGEST_DKIM_SELECTOR": "bad selector", "DIGEST_DKIM_KEY_FILE": "{rsa}"},
         "DIGEST_DKIM_SELECTOR: not a selector"),
        ({"DIGEST_DKIM_SELECTOR": "s1", "DIGEST_DKIM_KEY_FILE": "{rsa}",
          "DIGEST_DKIM_DOMAIN": "no"},
         "DIGEST_DKIM_DOMAIN: not a domain name"),
        ({"DIGEST_DKIM_ED25519_SELECTOR": "e1", "DIGEST_DKIM_ED25519_KEY_FILE": "{ed}"},
         "DIGEST_DKIM_KEY_FILE: not set; the Ed25519 signature is a second one"),
    ],
)  # fmt: skip
def test_a_bad_dkim_setting_stops_start_up_with_one_line_naming_it(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    dkim_keys: Keys,  # noqa: F811
    env: dict[str, str],
    says: str,
) -> None:
    (cli_env / "garbage.pem").write_text("not a key")
    files = {"rsa": str(dkim_keys.rsa_file), "ed": str(dkim_keys.ed25519_file)}
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(**files))
    for command in (["settings"], ["status"], ["worker", "--until-empty"]):
        r = run(capsys, *command)
        assert r.code == 78, (command, r)
        assert says.format(**files) in r.err
        assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_an_unreadable_key_file_stops_start_up(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder where the file should be: unreadable as a key whoever runs it (root included).
    (cli_env / "keys").mkdir()
    monkeypatch.setenv("DIGEST_DKIM_SELECTOR", "s1")
    monkeypatch.setenv("DIGEST_DKIM_KEY_FILE", str(cli_env / "keys"))
    r = run(capsys, "settings")
    assert r.code == 78, r
    assert f"DIGEST_DKIM_KEY_FILE: cannot read {cli_env / 'keys'} (Is a directory)" in r.err


def test_the_signing_domain_defaults_to_the_from_domain_and_can_be_set(
    make_settings,  # type: ignore[no-untyped-def]
    dkim_keys: Keys,  # noqa: F811
) -> None:
    plain = make_settings(DIGEST_FROM=f"News <news@{DOMAIN}>", **dkim_keys.settings(ed25519=True))
    assert plain.dkim_signer is not None
    assert [(k.selector, k.domain, k.algorithm) for k in plain.dkim_signer.keys] == [
        ("rsa1", DOMAIN, "rsa-sha256"),
        ("ed1", DOMAIN, "ed25519-sha256"),
    ]
    mail = make_settings(dkim_domain="Mail.Bücher.example", **dkim_keys.settings())
    assert mail.dkim_signer is not None
    assert mail.dkim_signer.keys[0].domain == "mail.xn--bcher-kva.example"
    assert make_settings().dkim_signer is None
