"""The DKIM keys digest signs with, as ``digest check`` compares them with the published records.

The signing settings (``DIGEST_DKIM_*``) are read with ``getattr`` so this check says "not
configured" on a build without them rather than fail.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.config import Settings


@dataclass(frozen=True)
class ConfiguredKey:
    """One signing key the settings name: which algorithm, selector, domain and file."""

    algorithm: str  # "rsa" or "ed25519"
    selector: str
    domain: str
    key_file: Path

    @property
    def record_name(self) -> str:
        """Where its public key must be published."""
        return f"{self.selector}._domainkey.{self.domain}"


class KeyUnusable(ValueError):
    """A key file that cannot be read, or holds no key of its algorithm."""


def configured_keys(settings: Settings) -> list[ConfiguredKey]:
    """The keys digest signs with: RSA, then Ed25519 as a second signature; [] when off."""
    domain = str(getattr(settings, "dkim_domain", None) or settings.from_domain).lower()
    found: list[ConfiguredKey] = []
    for algorithm, prefix in (("rsa", "dkim"), ("ed25519", "dkim_ed25519")):
        selector = getattr(settings, f"{prefix}_selector", None)
        key_file = getattr(settings, f"{prefix}_key_file", None)
        if selector and key_file:
            found.append(ConfiguredKey(algorithm, str(selector), domain, Path(key_file)))
    return found


def public_key_forms(key: ConfiguredKey) -> set[bytes]:
    """What a record's ``p=`` may hold for this key: the DER public key (RSA, RFC 6376) or the
    raw 32 bytes (Ed25519, RFC 8463)."""
    try:
        data = key.key_file.read_bytes()
    except OSError as exc:
        raise KeyUnusable(f"cannot read {key.key_file}: {exc.strerror or exc}") from None
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyUnusable(f"{key.key_file} holds no unencrypted PEM private key") from exc
    public = private.public_key()
    if key.algorithm == "ed25519":
        if not isinstance(public, ed25519.Ed25519PublicKey):
            raise KeyUnusable(f"{key.key_file} is not an Ed25519 key")
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {raw}
    if not isinstance(public, rsa.RSAPublicKey):
        raise KeyUnusable(f"{key.key_file} is not an RSA key")
    return {
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
    }


def published_key(record: str) -> bytes | None:
    """The decoded ``p=`` of a DKIM record; b"" for a revoked key, None when it has no p=."""
    for part in record.split(";"):
        tag, eq, value = part.partition("=")
        if eq and tag.strip() == "p":
            compact = "".join(value.split())
            try:
                return base64.b64decode(compact, validate=True)
            except (binascii.Error, ValueError):
                return None
    return None
