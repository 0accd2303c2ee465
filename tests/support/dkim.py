"""DKIM for tests: keys in files, and an independent verifier (dkimpy) whose DNS is a dict.

``verify_all`` checks every DKIM-Signature of a message with dkimpy against the TXT records
the test publishes, so a signature passes only if another implementation agrees with ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.mail.dkim_keys import public_record

DOMAIN = "brief.example"


@dataclass
class Dns:
    """TXT records by name, as a resolver would answer them."""

    records: dict[str, str] = field(default_factory=dict)

    def publish(self, name: str, record: str) -> None:
        """Answer ``record`` for ``name`` (``selector._domainkey.domain``)."""
        self.records[name.rstrip(".") + "."] = record

    def publish_zone_line(self, line: str) -> None:
        """Publish a ``NAME TXT "a" "b"`` line as a DNS server would: the strings joined."""
        name, _, rest = line.partition(" TXT ")
        strings = re.findall(r'"([^"]*)"', rest)
        assert all(len(s.encode()) <= 255 for s in strings), strings
        self.publish(name, "".join(strings))

    def answer(self, name: bytes, timeout: int = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``."""
        found = self.records.get(name.decode())
        return found.encode() if found is not None else None


def write_pem(path: Path, key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> Path:
    """``key`` as an unencrypted PKCS#8 PEM file at ``path``."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


@dataclass
class Keys:
    """An RSA-2048 and an Ed25519 key in files, published under selectors rsa1 and ed1."""

    rsa_file: Path
    ed25519_file: Path
    dns: Dns

    def settings(self, *, ed25519: bool = False) -> dict[str, object]:
        """The settings that turn signing on with these keys."""
        values: dict[str, object] = {"dkim_selector": "rsa1", "dkim_key_file": self.rsa_file}
        if ed25519:
            values |= {"dkim_ed25519_selector": "ed1", "dkim_ed25519_key_file": self.ed25519_file}
        return values

    def env(self, *, ed25519: bool = False) -> dict[str, str]:
        """The same as DIGEST_* environment variables."""
        return {f"DIGEST_{k.upper()}": str(v) for k, v in self.settings(ed25519=ed25519).items()}


@pytest.fixture(scope="session")
def dkim_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Keys made once per run (RSA key generation takes a moment)."""
    folder = tmp_path_factory.mktemp("dkim")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    dns = Dns()
    dns.publish(f"rsa1._domainkey.{DOMAIN}", public_record(rsa_key))
    dns.publish(f"ed1._domainkey.{DOMAIN}", public_record(ed_key))
    return Keys(write_pem(folder / "rsa.pem", rsa_key), write_pem(folder / "ed.pem", ed_key), dns)


def signatures(message: bytes) -> list[dict[bytes, bytes]]:
    """The tags of each DKIM-Signature of ``message``, top first."""
    head = message.split(b"\r\n\r\n", 1)[0]
    fields = re.findall(rb"^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M | re.I)
    out = []
    for value in fields:
        tags = (t.split(b"=", 1) for t in re.sub(rb"\s+", b"", value).split(b";") if t)
        out.append({k: v for k, v in tags})
    return out


def verify_all(message: bytes, dns: Dns) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of ``message``, top first."""
    verdicts = []
    for i in range(len(signatures(message))):
        try:
            verdicts.append(bool(dkim.DKIM(message).verify(idx=i, dnsfunc=dns.answer)))
        except dkim.ValidationError:  # dkimpy raises for a body hash that does not match
            verdicts.append(False)
    return verdicts
