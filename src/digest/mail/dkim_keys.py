"""DKIM keys: reading them from the configured files once at start-up, making new ones, and the
DNS TXT record that publishes each one's public half.

Sending never looks DNS up; whether the published record matches the key is ``digest check``'s
business (``public_record`` gives what it should find).
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

import idna
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from digest.errors import InvalidInput, SettingsError
from digest.mail.dkim import DkimKey, DkimSigner

RSA_BITS = 2048
# RFC 8301: verifiers must not accept signatures by RSA keys under 1024 bits.
MIN_RSA_BITS = 1024
# A DNS character-string holds at most 255 bytes; a longer TXT record is several of them.
TXT_STRING = 255
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")

PrivateKey = RSAPrivateKey | Ed25519PrivateKey


def check_selector(value: str) -> str:
    """``value`` if it is a selector (DNS labels: letters, digits, hyphens), else ValueError."""
    if len(value) > 63 or not _SELECTOR.fullmatch(value):
        raise ValueError(f"not a selector (letters, digits and hyphens, like s2026): {value!r}")
    return value


def check_domain(value: str) -> str:
    """``value`` as an ASCII domain in lower case (IDNA), else ValueError."""
    name = value.strip().rstrip(".")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii").lower()
    except (UnicodeError, idna.IDNAError):
        raise ValueError(f"not a domain name: {value!r}") from None
    if "." not in ascii_name or len(ascii_name) > 253:
        raise ValueError(f"not a domain name: {value!r}")
    return ascii_name


def load_key(path: Path, *, ed25519: bool) -> PrivateKey:
    """The private key in the PEM file ``path``; ValueError saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror or exc})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{path} holds no unencrypted PEM private key") from None
    if ed25519:
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return key
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"{path} is a {key.key_size}-bit key; use {RSA_BITS} bits")
    return key


def load_signer(
    domain: str,
    rsa_key: tuple[str | None, Path | None],
    ed25519_key: tuple[str | None, Path | None],
) -> DkimSigner | None:
    """The signer the DKIM settings describe, its keys read now; None while signing is off.

    ``rsa_key`` and ``ed25519_key`` are (selector, key file) pairs, each set or unset as a
    whole. SettingsError naming the setting for a half-set pair, an unreadable or wrong key.
    """
    keys: list[DkimKey] = []
    for (selector, path), prefix, is_ed in (
        (rsa_key, "DIGEST_DKIM", False),
        (ed25519_key, "DIGEST_DKIM_ED25519", True),
    ):
        if selector is None and path is None:
            continue
        if path is None:
            raise SettingsError(f"{prefix}_KEY_FILE: not set, and {prefix}_SELECTOR is")
        if selector is None:
            raise SettingsError(f"{prefix}_SELECTOR: not set, and {prefix}_KEY_FILE is")
        try:
            keys.append(DkimKey(selector, domain, load_key(path, ed25519=is_ed)))
        except ValueError as exc:
            raise SettingsError(f"{prefix}_KEY_FILE: {exc}") from None
    if keys and not isinstance(keys[0].private_key, RSAPrivateKey):
        # Most receivers verify only RSA signatures (RFC 8463 asks for both).
        raise SettingsError("DIGEST_DKIM_KEY_FILE: not set; the Ed25519 signature is a second one")
    return DkimSigner(tuple(keys)) if keys else None


def public_record(key: PrivateKey) -> str:
    """The TXT record that publishes ``key``'s public half: ``v=DKIM1; k=rsa; p=...``."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode("ascii")


def txt_strings(record: str) -> list[str]:
    """``record`` cut into the strings of at most 255 bytes that a TXT record is made of."""
    return [record[i : i + TXT_STRING] for i in range(0, len(record), TXT_STRING)]


@dataclass(frozen=True)
class NewKey:
    """A key just written, and the DNS record to publish for it."""

    path: Path
    name: str  # selector._domainkey.domain
    record: str  # v=DKIM1; k=...; p=...

    @property
    def zone_line(self) -> str:
        """The record as a zone file line: ``NAME TXT "..." "..."``."""
        return f"{self.name} TXT " + " ".join(f'"{s}"' for s in txt_strings(self.record))


def keygen(path: Path, *, selector: str, domain: str, ed25519: bool = False) -> NewKey:
    """Make a key (RSA-2048, or Ed25519), write it to ``path`` (mode 0600, never over an
    existing file) and return the record to publish. InvalidInput for a bad selector or an
    existing file; OSError when the file cannot be written."""
    try:
        check_selector(selector)
    except ValueError as exc:
        raise InvalidInput(f"--selector: {exc}") from None
    key: PrivateKey = (
        Ed25519PrivateKey.generate()
        if ed25519
        else rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # O_EXCL: an existing key may be the one published in DNS; losing it stops signing.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} exists; keygen never overwrites a key (use --out)") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # whatever the umask
        fh.write(pem)
    return NewKey(path, f"{selector}._domainkey.{domain}", public_record(key))
