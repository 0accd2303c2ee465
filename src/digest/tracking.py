"""Tracked links: the signed token of ``/r/TOKEN`` and what it tells the redirect.

A tracked link is ``BASE/r/LINK.MAC`` followed by the copy's own part, ``.COPY``:

- ``LINK`` (URL-safe base64, deflated when that is shorter) names the mail (an edition, an
  announcement or an alert) and the exact URL the mail linked to, and ``MAC`` signs both: the
  redirect goes only to a URL that was in that mail, and a tampered or truncated token is
  refused (never an open redirect).
  It is the same for every copy of the mail, so it is written once into the shared body.
- ``COPY`` is filled per message at send time (the ``%%TRACK%%`` placeholder). With aggregate
  tracking it is a random tag (with a MAC, so nobody can mint more) kept nowhere, so clicks
  from one copy can be told apart (unique clicks, a scanner opening every link of one mail)
  without anything linking them to a reader; with per-reader tracking it is the subscriber's
  id and a MAC binding it to that mail; ``t`` marks a test copy and ``n`` a reader who asked
  not to be counted: neither is counted.

Pure functions: no store, no settings object, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

from digest.errors import InvalidToken

TRACK_PATH = "/r/{token}"
OPEN_PATH = "/o/{token}.gif"
#: Longest token accepted: a URL of 2,048 characters and its parts, base64-encoded.
MAX_TOKEN_LENGTH = 3000
_LINK_MAC_BYTES = 16  # 128 bits: forging one is out of reach, and it is one per link
_READER_MAC_BYTES = 9
_LONGEST_COPY = 32  # "." + 12 base-36 digits + "-" + 12 letters of MAC, and room to spare
TEST_COPY = "t"
UNCOUNTED_COPY = "n"
_COPY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_TAG_RANDOM, _TAG_MAC = 10, 6  # an aggregate copy tag: 16 letters, as copy_tag holds


class TrackingMode(StrEnum):
    """``DIGEST_TRACKING``: what a click leaves behind."""

    OFF = "off"
    AGGREGATE = "aggregate"
    PER_READER = "per-reader"


class MailKind(StrEnum):
    """Which table a tracked mail's id is in (one letter, as it travels in the token)."""

    EDITION = "e"
    ANNOUNCEMENT = "a"
    ALERT = "l"


@dataclass(frozen=True, order=True)
class MailRef:
    """One mail whose copies carry tracked links: a digest edition, an announcement, an alert."""

    kind: MailKind
    id: int

    def __str__(self) -> str:
        return f"{self.kind.value}{self.id}"

    @classmethod
    def parse(cls, text: str) -> MailRef:
        """``e12`` -> ``MailRef(EDITION, 12)``; ValueError for anything else."""
        kind, number = MailKind(text[:1]), text[1:]
        if not number.isdigit() or len(number) > 12 or (number[0] == "0" and number != "0"):
            raise ValueError(f"not a mail reference: {text!r}")
        return cls(kind, int(number))


@dataclass(frozen=True)
class TrackedLink:
    """What a valid ``/r/`` token says.

    ``copy`` is the copy's tag (None when the token came without one, e.g. a link copied out of
    the web version); ``reader`` the subscriber's id under per-reader tracking; ``counted``
    is False for test copies and readers who opted out.
    """

    mail: MailRef
    url: str
    copy: str | None = None
    reader: int | None = None
    counted: bool = True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("not a link token") from exc


def _mac(secret: bytes, label: str, payload: bytes, size: int) -> bytes:
    return hmac.new(secret, b"digest-" + label.encode() + b"/" + payload, hashlib.sha256).digest()[
        :size
    ]


#: What links in mail are made of, for deflate to refer back to: a tracked link carries its
#: whole URL, and a digest has dozens, so every byte saved is saved dozens of times per
#: message (the send path pays for message size). Fixed forever: tokens in old mail use it.
_ZDICT = (
    b"utm_source=&utm_medium=email&utm_campaign=daily-weekly-announcement-alert-2026-"
    b"https://www.http://.html/index.php?p=/category/news/20"
)
_DEFLATED = 0x00  # first byte of a compressed payload; a plain one starts with a MailKind


def _pack(mail: MailRef, url: str) -> bytes:
    """``mail`` and ``url`` as the token carries them: deflated against ``_ZDICT`` when that
    is shorter (about half, for a URL with UTM parameters)."""
    raw = f"{mail}\n{url}".encode()
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    packed = bytes([_DEFLATED]) + squeezer.compress(raw) + squeezer.flush()
    return packed if len(packed) < len(raw) else raw


def _unpack(payload: bytes) -> str:
    """The text ``_pack`` packed (only ever called on a payload whose MAC holds)."""
    if not payload or payload[0] != _DEFLATED:
        return payload.decode("utf-8")
    opener = zlib.decompressobj(-15, _ZDICT)
    text = opener.decompress(payload[1:], MAX_TOKEN_LENGTH * 4)
    if opener.unconsumed_tail or not opener.eof:
        raise ValueError("not a whole payload")
    return text.decode("utf-8")


def link_token(secret: bytes, mail: MailRef, url: str) -> str:
    """The shared part of a tracked link to ``url`` in ``mail``: ``LINK.MAC``."""
    payload = _pack(mail, url)
    return _b64(payload) + "." + _b64(_mac(secret, "link", payload, _LINK_MAC_BYTES))


def fits_a_token(secret: bytes, mail: MailRef, url: str) -> bool:
    """Whether a tracked link to ``url`` reads back as ``url`` with room for any copy's part
    (a link of thousands of characters does not: it is sent untracked)."""
    token = link_token(secret, mail, url)
    if len(token) + _LONGEST_COPY > MAX_TOKEN_LENGTH:
        return False
    try:
        return read_token(secret, token).url == url
    except InvalidToken:
        return False


def tracked_url(base_url: str, secret: bytes, mail: MailRef, url: str, copy_part: str) -> str:
    """The whole tracked link; ``copy_part`` is ``"." + COPY`` or the placeholder for it."""
    return base_url + TRACK_PATH.format(token=link_token(secret, mail, url) + copy_part)


def aggregate_copy(secret: bytes, mail: MailRef | None) -> str:
    """A copy's part under aggregate tracking: ``.`` and 16 letters, 10 random and 6 of a MAC
    over them and the mail, kept nowhere: it names no reader, and nobody can mint new tags to
    inflate the unique clicks (one in 2**30 guesses would pass)."""
    # 50 random bits as base32, whose alphabet lower-cased is _COPY_ALPHABET: one read of the
    # system's randomness per message, where a choice per letter was one per letter (30-50 µs).
    tag = base64.b32encode(secrets.token_bytes(7)).decode("ascii")[:_TAG_RANDOM].lower()
    return "." + tag + _tag_mac(secret, mail, tag)


def _tag_mac(secret: bytes, mail: MailRef | None, tag: str) -> str:
    mac = _mac(secret, "copy", f"{mail or ''}/{tag}".encode(), 5)
    return base64.b32encode(mac).decode("ascii")[:_TAG_MAC].lower()


def reader_copy(secret: bytes, mail: MailRef, subscriber_id: int) -> str:
    """A copy's part under per-reader tracking: the reader's id, signed for this mail."""
    number = reader_tag(subscriber_id)
    mac = _mac(secret, "reader", f"{mail}/{number}".encode(), _READER_MAC_BYTES)
    return f".{number}-{_b64(mac)}"


def reader_tag(n: int) -> str:
    """A reader's copy tag under per-reader tracking: their id in base 36."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def read_token(secret: bytes, token: str) -> TrackedLink:
    """What a ``/r/`` token says, or InvalidToken when it is malformed, truncated or altered.

    The link's MAC is checked first and in constant time; a copy part that does not verify
    (an altered reader MAC, a garbled tag) still redirects, since the URL is proven, but is
    not counted: nobody can make digest count a click as someone else's.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidToken("not a link token")
    parts = token.split(".")
    if len(parts) < 2 or len(parts) > 3:
        raise InvalidToken("not a link token")
    payload, mac = _unb64(parts[0]), _unb64(parts[1])
    if len(mac) != _LINK_MAC_BYTES or not hmac.compare_digest(
        mac, _mac(secret, "link", payload, _LINK_MAC_BYTES)
    ):
        raise InvalidToken("not a link token")
    try:
        ref, url = _unpack(payload).split("\n", 1)
        mail = MailRef.parse(ref)
    except (ValueError, zlib.error) as exc:  # signed by us: only an older format gets here
        raise InvalidToken("not a link token") from exc
    if len(parts) == 2:
        return TrackedLink(mail, url)
    return _with_copy(secret, TrackedLink(mail, url), parts[2])


def _with_copy(secret: bytes, link: TrackedLink, copy: str) -> TrackedLink:
    if copy in (TEST_COPY, UNCOUNTED_COPY):
        return TrackedLink(link.mail, link.url, copy=None, counted=False)
    if "-" in copy:
        number = copy.partition("-")[0]
        if number.isalnum() and len(number) <= 12 and number == number.lower():
            subscriber_id = int(number, 36)
            if hmac.compare_digest(
                reader_copy(secret, link.mail, subscriber_id).encode(), f".{copy}".encode()
            ):
                return TrackedLink(link.mail, link.url, copy=number, reader=subscriber_id)
        return TrackedLink(link.mail, link.url, counted=False)
    if len(copy) == _TAG_RANDOM + _TAG_MAC and all(c in _COPY_ALPHABET for c in copy):
        tag, mac = copy[:_TAG_RANDOM], copy[_TAG_RANDOM:]
        if hmac.compare_digest(mac.encode(), _tag_mac(secret, link.mail, tag).encode()):
            return TrackedLink(link.mail, link.url, copy=copy)
    return TrackedLink(link.mail, link.url, counted=False)


def url_key(url: str) -> str:
    """A link's key in the click counts: 32 hex digits of SHA-256, the same on every store."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
