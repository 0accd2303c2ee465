"""VERP: an envelope sender per message, so a bounce names its delivery by where it comes back.

With ``DIGEST_VERP=true`` each message leaves with the envelope sender ``LOCAL+TOKEN@DOMAIN``
(``LOCAL@DOMAIN`` being the return path), and every bounce report is mailed back to that
address, whether or not it quotes the original's Message-ID. TOKEN is the delivery's id in
base 36 followed by 16 base32 characters of an HMAC-SHA256 of that id under the secret key, so
nobody without the key can name a delivery, and a token altered in any character or cut short
names none. Only ``[a-z0-9]``: it survives MTAs that fold a local part's case and local-part
rules that refuse ``=``, ``/`` or a second ``+``. Pure: strings and bytes in and out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

MAC_CHARS = 16  # 80 bits of HMAC: far beyond guessing, one mail at a time
MAX_ID_CHARS = 13  # base 36 of any 64-bit id
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# A token's shape: a canonical base 36 id (no leading zero), then the MAC.
_TOKEN = re.compile(rf"[1-9a-z][0-9a-z]{{0,{MAX_ID_CHARS - 1}}}[a-z2-7]{{{MAC_CHARS}}}")
_PURPOSE = b"digest-verp\x00"  # keeps these MACs apart from every other use of the key


def token_for(delivery_id: int, key: bytes) -> str:
    """The token that names ``delivery_id`` (1 or more), signed with ``key``."""
    if delivery_id < 1:
        raise ValueError(f"a delivery id is 1 or more, not {delivery_id}")
    digits = ""
    rest = delivery_id
    while rest:
        rest, digit = divmod(rest, 36)
        digits = _DIGITS[digit] + digits
    return digits + _mac(digits, key)


def delivery_of(token: str, key: bytes) -> int | None:
    """The delivery id a token names, or None when it is forged, altered or cut short.

    Case is ignored: some MTAs fold the local part on the way back.
    """
    token = token.lower()
    if _TOKEN.fullmatch(token) is None:
        return None
    digits, mac = token[:-MAC_CHARS], token[-MAC_CHARS:]
    if not hmac.compare_digest(mac, _mac(digits, key)):
        return None
    return int(digits, 36)


def verp_address(base: str, delivery_id: int, key: bytes) -> str:
    """``LOCAL+TOKEN@DOMAIN`` for the return path ``base`` (``LOCAL@DOMAIN``)."""
    local, _, domain = base.rpartition("@")
    return f"{local}+{token_for(delivery_id, key)}@{domain}"


def claimed_token(address: str) -> str | None:
    """The token an address carries in its ``+`` extension, when the extension has a
    token's shape (whether it is genuine is ``delivery_of``'s question), else None."""
    local, at, _domain = address.rpartition("@")
    head, plus, extension = local.rpartition("+")
    if not at or not plus or not head:
        return None
    extension = extension.lower()
    return extension if _TOKEN.fullmatch(extension) else None


def _mac(digits: str, key: bytes) -> str:
    digest = hmac.new(key, _PURPOSE + digits.encode(), hashlib.sha256).digest()
    # 10 bytes are exactly 16 base32 characters: no padding to strip.
    return base64.b32encode(digest[: MAC_CHARS * 5 // 8]).decode().lower()
