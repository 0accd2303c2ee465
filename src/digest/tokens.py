"""Signed tokens for the links in mail: confirm, unsubscribe, preferences, stay.

A token names a subscriber, is bound to one purpose and to the subscriber's address (so a
token for an erased person never acts on whoever gets their id next), carries the time it was
issued, and is signed with HMAC-SHA256 under ``DIGEST_SECRET_KEY``. It is checked in constant
time. A token may also be bound to a moment (a confirmation link to the request it answers):
it then holds only while the subscriber's row names that same moment. Pure functions: no
store, no clock unless given one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from digest.errors import InvalidToken, TokenExpired

MAX_TOKEN_LENGTH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAC_BYTES = 20  # 160 bits: far beyond guessing, short enough for a tidy URL


class Purpose(StrEnum):
    """What a token may be used for; a token for one purpose is refused for every other."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    STAY = "stay"  # list hygiene's "Yes, keep sending" (``hygiene.py``)


#: How long each kind of link works. Unsubscribe links never expire (RFC 8058 and the law
#: expect an old mail's link to work); confirmation links last a week.
LIFETIMES: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
    # A retired reader may come back by the same button, however late.
    Purpose.STAY: None,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _address_tag(email: str, bound_to: datetime | None = None) -> str:
    text = email if bound_to is None else f"{email}\n{_moment(bound_to)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _moment(at: datetime) -> str:
    """A time to the microsecond as whole microseconds since 1970: the same for the same
    instant in any zone, and exact (no float), as stored and read back from either store."""
    return str((at - _EPOCH) // timedelta(microseconds=1))


def _mac(secret: bytes, purpose: Purpose, payload: str) -> bytes:
    message = f"digest-token/{purpose.value}/{payload}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def sign(
    secret: bytes,
    purpose: Purpose,
    subscriber_id: int,
    email: str,
    *,
    now: datetime | None = None,
    bound_to: datetime | None = None,
    scope: str | None = None,
) -> str:
    """A token for ``purpose`` on this subscriber, issued ``now``, bound to ``bound_to``,
    for what ``scope`` names (a newsletter's id, or ``all``; letters and digits)."""
    issued = int((now or datetime.now(UTC)).timestamp())
    payload = f"{subscriber_id}.{issued}.{_address_tag(email, bound_to)}"
    if scope is not None:
        if not scope.isalnum() or not scope.isascii():
            raise ValueError(f"a token's scope is letters and digits, not {scope!r}")
        payload += f".{scope}"
    return f"{_b64(payload.encode())}.{_b64(_mac(secret, purpose, payload))}"


def verify(
    secret: bytes,
    token: str,
    purpose: Purpose,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> tuple[int, str]:
    """Check a token; returns (subscriber id, address tag) or raises InvalidToken/TokenExpired.

    ``max_age`` defaults to the purpose's lifetime. The caller must compare the address tag
    with ``address_tag(subscriber.email)`` after loading the subscriber (``matches``).
    """
    subscriber_id, tag, _scope = verify_scoped(secret, token, purpose, now=now, max_age=max_age)
    return subscriber_id, tag


def verify_scoped(
    secret: bytes,
    token: str,
    purpose: Purpose,
    *,
    now: datetime | None = None,
    max_age: timedelta | None = None,
) -> tuple[int, str, str | None]:
    """``verify``, with the token's scope as a third value (None: a token made without one,
    as every token was before there were several newsletters)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("this link is not valid")
    try:
        payload_part, mac_part = token.split(".")
        payload = _unb64(payload_part).decode("ascii")
        given = _unb64(mac_part)
        sid_text, issued_text, tag, *rest = payload.split(".")
        if len(rest) > 1 or (rest and not rest[0]):
            raise ValueError("too many parts")
        subscriber_id, issued = int(sid_text), int(issued_text)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("this link is not valid") from None
    if not hmac.compare_digest(given, _mac(secret, purpose, payload)):
        raise InvalidToken("this link is not valid")
    lifetime = max_age if max_age is not None else LIFETIMES[purpose]
    if lifetime is not None:
        age = (now or datetime.now(UTC)) - datetime.fromtimestamp(issued, UTC)
        if age > lifetime:
            raise TokenExpired("this link has expired")
    return subscriber_id, tag, (rest[0] if rest else None)


def matches(tag: str, email: str, bound_to: datetime | None = None) -> bool:
    """Whether a verified token's tag belongs to this (current) address and bound moment."""
    # As bytes: compare_digest refuses a str with non-ASCII characters.
    expected = _address_tag(email, bound_to).encode()
    return hmac.compare_digest(tag.encode("utf-8", "replace"), expected)
