"""The ``Digest-Signature`` header of a webhook POST: HMAC-SHA256 over the send time and the body.

Pure. The header reads ``t=UNIX_SECONDS,v1=HEX``, HEX being HMAC-SHA256 of ``UNIX_SECONDS.BODY``
keyed with the secret's UTF-8 bytes, exactly as ``digest webhooks add`` printed it. The time is
signed with the body so a captured POST cannot be replayed later than the receiver's tolerance;
``verify`` is what a receiver runs (the README has the same lines for receivers to copy).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Digest-Signature"
SCHEME = "v1"
#: How far a receiver accepts the signed time from its own clock, by default.
TOLERANCE_SECONDS = 300


def signature(secret: str, body: bytes, t: int) -> str:
    """The hex HMAC-SHA256 of ``b"T." + body`` under the secret's UTF-8 bytes."""
    signed = b"%d." % t + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int) -> str:
    """The header value for ``body`` sent at ``t`` (Unix seconds): ``t=T,v1=HEX``."""
    return f"t={t},{SCHEME}={signature(secret, body, t)}"


def parse(header: str) -> tuple[int, list[str]]:
    """The time and the v1 signatures a header carries; ValueError when it has no time or
    no v1 signature. Unknown schemes are ignored, so a later ``v2`` can be added beside."""
    t: int | None = None
    found: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            t = int(value)
        elif key == SCHEME and value:
            found.append(value)
    if t is None or not found:
        raise ValueError("not a Digest-Signature header")
    return t, found


def verify(
    header: str, body: bytes, secret: str, now: int, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` seconds
    of ``now``: the receiver's check, in constant time."""
    try:
        t, signatures = parse(header)
    except ValueError:
        return False
    if abs(now - t) > tolerance:
        return False
    expected = signature(secret, body, t)
    # Every candidate is compared, matching or not: the time taken tells nothing.
    matches = [hmac.compare_digest(expected, s) for s in signatures]
    return any(matches)
