"""The MIME message of one mail: a shared body plus one person's headers and links, as bytes.

A digest body is the same for thousands of people except for five placeholders. Building an
``email.message.EmailMessage`` per person costs milliseconds (docs/bench-render.md); here the text
and HTML shared by a body are quoted-printable encoded once (cached), cut at the placeholders,
and each message only encodes its few personal values and joins bytes.

Why substitution after encoding is correct: every placeholder starts a fresh encoded line
(a soft line break ``=\\r\\n`` before and after the value, which decoders drop), so each piece
is valid quoted-printable on its own and no line passes 76 characters.

With DKIM keys configured (``Sender.signer``), each message is signed here, so whatever sends
it (the worker, a test copy) sends it signed; the shared pieces' canonical form is cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html as html_lib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING

from digest.addresses import clean_name
from digest.config import Settings
from digest.links import unsubscribe_token_in
from digest.mail import headers as h
from digest.mail.dkim import DkimSigner, canonical_lines

if TYPE_CHECKING:
    from digest.newsletter_config import NewsletterConfig

EMAIL = "%%EMAIL%%"
NAME = "%%NAME%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
PREFERENCES_URL = "%%PREFERENCES_URL%%"
UNSUBSCRIBE_ALL_URL = "%%UNSUBSCRIBE_ALL_URL%%"  # leaves every newsletter, not just this one
# The copy's part of each tracked link (``tracking.py``), inside the link's URL: filled with
# the same value at every place, it splits a URL across encoded lines only at soft breaks,
# which decoders drop, so each link decodes whole in both parts.
TRACK = "%%TRACK%%"
PLACEHOLDERS = (EMAIL, NAME, UNSUBSCRIBE_URL, PREFERENCES_URL, UNSUBSCRIBE_ALL_URL, TRACK)
_PLACEHOLDER = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")
_SOFT_BREAK = b"=\r\n"
TEST_PREFIX = "[TEST] "


@dataclass(frozen=True)
class Sender:
    """What every message of this installation shares: From, List-Id, the unsubscribe mailbox."""

    from_header: str  # the From header value, already encoded
    list_id: str  # the List-Id header value, e.g. "digest <digest.example.com>"
    unsubscribe_mailto: str | None  # "mailto:..." or None
    domain: str  # the From domain: right-hand side of Message-IDs
    signer: DkimSigner | None = None  # DKIM keys every message is signed with, if any
    reply_to: str | None = None  # the Reply-To header value, already encoded

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        """Built once per worker from ``DIGEST_FROM``, ``DIGEST_LIST_ID`` and
        ``DIGEST_UNSUBSCRIBE_MAILTO``, which the settings class has checked."""
        label = h.phrase(settings.site_name)
        list_id = settings.list_identifier
        mailto = settings.unsubscribe_mailto
        return cls(
            from_header=h.mailbox(*parseaddr(settings.from_)),
            list_id=f"{label} <{list_id}>" if label else f"<{list_id}>",
            unsubscribe_mailto=f"mailto:{mailto}" if mailto else None,
            domain=settings.from_domain,
            signer=settings.dkim_signer,
        )

    @classmethod
    def for_newsletter(cls, settings: Settings, newsletter: NewsletterConfig) -> Sender:
        """A newsletter's own From, Reply-To and List-Id; the rest as the settings say."""
        label = h.phrase(newsletter.name)
        site = cls.from_settings(settings)
        return cls(
            from_header=h.mailbox(*parseaddr(newsletter.sender)),
            list_id=f"{label} <{newsletter.list_id}>" if label else f"<{newsletter.list_id}>",
            unsubscribe_mailto=site.unsubscribe_mailto,
            domain=site.domain,
            signer=site.signer,
            reply_to=h.mailbox(*parseaddr(newsletter.reply_to)) if newsletter.reply_to else None,
        )


@dataclass(frozen=True)
class Personal:
    """One recipient's part of a message; without an unsubscribe URL it is transactional."""

    to_email: str
    to_name: str
    message_id: str
    date: datetime
    unsubscribe_url: str | None = None
    preferences_url: str | None = None
    unsubscribe_all_url: str | None = None
    is_test: bool = False
    track: str = ""  # the copy's part of its tracked links, ".COPY" (tracked bodies only)


@dataclass(frozen=True)
class _Pieces:
    """Literal pieces and placeholder names in order, and where a value needs a soft break
    before it (after a piece that does not end its line), worked out once per body."""

    items: tuple[bytes | str, ...]  # bytes: pre-encoded; str: a placeholder to fill
    breaks: tuple[bool, ...]  # per item: a soft break goes before it (placeholders only)
    names: frozenset[str]  # the placeholders it holds

    @classmethod
    def of(cls, items: tuple[bytes | str, ...]) -> _Pieces:
        """``items`` with the soft breaks they take when every value is filled."""
        breaks = tuple(
            isinstance(item, str)
            and i > 0
            and isinstance(items[i - 1], bytes)
            # A literal piece is never empty, and a value is followed by a soft break.
            and not items[i - 1].endswith(b"\n")  # type: ignore[union-attr]
            for i, item in enumerate(items)
        )
        return cls(items, breaks, frozenset(i for i in items if isinstance(i, str)))


@dataclass(frozen=True)
class _EncodedPart:
    """One body part, quoted-printable, cut into literal pieces and placeholder names."""

    pieces: _Pieces
    # The same pieces in DKIM's relaxed body form, so a signed message's body hash costs a
    # join and a SHA-256, not a pass over 30 KB: canonicalising piece by piece is exact because
    # quoted-printable never ends a piece with a space or tab (it writes "=20"), so no run of
    # white space spans two pieces, and the body ends in a non-empty boundary line.
    canonical: _Pieces


def _qp(data: str) -> bytes:
    """Quoted-printable of ``data`` with CRLF line ends (input line ends are normalised)."""
    raw = data.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(raw, quotetabs=False, istext=True).replace(b"\n", b"\r\n")


def _encode_part(content: str) -> _EncodedPart:
    pieces: list[bytes | str] = []
    for i, chunk in enumerate(_PLACEHOLDER.split(content)):
        if i % 2:
            pieces.append(chunk)
        elif chunk:
            pieces.append(_qp(chunk))
    canonical = (canonical_lines(p) if isinstance(p, bytes) else p for p in pieces)
    return _EncodedPart(_Pieces.of(tuple(pieces)), _Pieces.of(tuple(canonical)))


@lru_cache(maxsize=32)
def _prepare(text: str, html: str) -> tuple[_EncodedPart, _EncodedPart]:
    # Bodies arrive as new str objects per delivery; hashing 30 KB is microseconds, encoding
    # it is the cost this cache exists to avoid.
    return _encode_part(text), _encode_part(html)


def _fill(pieces: _Pieces, values: dict[str, bytes]) -> bytes:
    if all(values[name] for name in pieces.names):
        # Every value given (a tracked body has one per link): the soft breaks are where
        # ``pieces.breaks`` says, and one join builds the part.
        after = {name: values[name] + _SOFT_BREAK for name in pieces.names}
        both = {name: _SOFT_BREAK + value for name, value in after.items()}
        body = b"".join(
            [
                item if isinstance(item, bytes) else (both[item] if brk else after[item])
                for item, brk in zip(pieces.items, pieces.breaks, strict=True)
            ]
        )
    else:
        body = _fill_slowly(pieces.items, values)
    if body.endswith(_SOFT_BREAK):
        body = body[: -len(_SOFT_BREAK)]
    # The CRLF before a boundary belongs to the boundary (RFC 2046), so one more keeps the
    # content's own last line end.
    return body + b"\r\n"


def _fill_slowly(items: tuple[bytes | str, ...], values: dict[str, bytes]) -> bytes:
    """The pieces joined when some value is empty: an empty value leaves no soft breaks."""
    out: list[bytes] = []
    for piece in items:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        value = values[piece]
        if not value:
            continue
        if out and not out[-1].endswith(b"\n"):
            out.append(_SOFT_BREAK)
        out.append(value)
        out.append(_SOFT_BREAK)
    return b"".join(out)


def _values(personal: Personal) -> dict[str, str]:
    return {
        EMAIL: personal.to_email,
        NAME: clean_name(personal.to_name),
        UNSUBSCRIBE_URL: personal.unsubscribe_url or "",
        PREFERENCES_URL: personal.preferences_url or "",
        UNSUBSCRIBE_ALL_URL: personal.unsubscribe_all_url or "",
        TRACK: personal.track,
    }


def _encoded(values: dict[str, str]) -> dict[str, bytes]:
    """Each value quoted-printable, encoded once for however many places it fills."""
    return {k: _no_leading_dot(_qp(v)) for k, v in values.items()}


def _no_leading_dot(value: bytes) -> bytes:
    # A value starts a fresh line, and SMTP doubles a dot there: a tracked link's copy part
    # (".abc...") in every link would make each message a copy of itself on the wire. As
    # "=2E" it decodes to the same dot, and framing finds nothing to double.
    return b"=2E" + value[1:] if value.startswith(b".") else value


def _part_header(subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii")


_TEXT_HEADER = _part_header("plain")
_HTML_HEADER = _part_header("html")


# A whole edition shares one subject and, mostly, one send time: encode each once.
@lru_cache(maxsize=64)
def _subject_header(subject: str) -> str:
    return h.unstructured("Subject", subject)


@lru_cache(maxsize=64)
def _date_header(date: datetime) -> str:
    aware = date if date.tzinfo else date.replace(tzinfo=UTC)
    return "Date: " + format_datetime(aware) + "\r\n"


def _headers(subject: str, personal: Personal, sender: Sender, boundary: str) -> str:
    if _PLACEHOLDER.search(subject):
        subject = subject.replace(NAME, clean_name(personal.to_name))
        subject = subject.replace(EMAIL, personal.to_email)
    if personal.is_test:
        subject = TEST_PREFIX + subject
    lines = [
        "From: " + sender.from_header + "\r\n",
        "To: " + h.mailbox(personal.to_name, personal.to_email) + "\r\n",
        _subject_header(subject),
        # Whole seconds as the cache key: the header has no finer grain.
        _date_header(personal.date.replace(microsecond=0)),
        "Message-ID: " + h.msg_id(personal.message_id) + "\r\n",
        "List-Id: " + (sender.list_id if "<" in sender.list_id else f"<{sender.list_id}>") + "\r\n",
    ]
    if sender.reply_to:
        lines.append("Reply-To: " + sender.reply_to + "\r\n")
    if personal.unsubscribe_url:
        url = h.one_line(personal.unsubscribe_url)
        if " " in url or "<" in url or ">" in url:
            raise ValueError(f"not a URL for List-Unsubscribe: {url!r}")
        targets = [f"<{url}>"]
        if sender.unsubscribe_mailto:
            # The subject carries the same signed token as the URL, so a mail to the address
            # unsubscribes exactly this reader (``digest bounces import`` reads it), whoever
            # the From line claims to be.
            token = unsubscribe_token_in(url)
            subject = f"?subject=unsubscribe%20{token}" if token else ""
            targets.append(f"<{sender.unsubscribe_mailto}{subject}>")
        lines.append(h.fold("List-Unsubscribe", targets, sep=", "))
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    if personal.is_test:
        lines.append("X-Digest-Test: yes\r\n")
    lines.append("MIME-Version: 1.0\r\n")
    lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n')
    return "".join(lines)


def assemble(subject: str, text: str, html: str, personal: Personal, sender: Sender) -> bytes:
    """The complete message as bytes for SMTP DATA: headers, then text and HTML alternatives.

    Placeholders in ``text`` and ``html`` are replaced by the person's values (escaped for
    HTML); a message without an unsubscribe URL gets no List-Unsubscribe headers. Raises
    ValueError for an address or Message-ID that cannot be written into a header.
    """
    text_part, html_part = _prepare(text, html)
    # "=_" can never occur in quoted-printable output (a "=" there is always "=XX" or a soft
    # break at the end of a line), so the boundary cannot collide with the content.
    boundary = "=_" + secrets.token_hex(12)
    delimiter = b"--" + boundary.encode("ascii")
    head = _headers(subject, personal, sender, boundary).encode("utf-8")
    values = _values(personal)
    text_values = _encoded(values)
    html_values = _encoded({k: html_lib.escape(v, quote=True) for k, v in values.items()})
    text = _fill(text_part.pieces, text_values)
    html = _fill(html_part.pieces, html_values)
    message = b"".join((head, b"\r\n", *_body(delimiter, text, html)))
    if sender.signer is None:
        return message
    body_hash = hashlib.sha256()
    for chunk in _body(
        delimiter,
        _fill(text_part.canonical, {k: canonical_lines(v) for k, v in text_values.items()}),
        _fill(html_part.canonical, {k: canonical_lines(v) for k, v in html_values.items()}),
    ):
        body_hash.update(chunk)
    return sender.signer.sign(
        message,
        int(personal.date.timestamp()),
        body_hash=base64.b64encode(body_hash.digest()).decode("ascii"),
    )


def _body(delimiter: bytes, text: bytes, html: bytes) -> tuple[bytes, ...]:
    """The multipart body around its two filled parts."""
    return (
        delimiter,
        b"\r\n",
        _TEXT_HEADER,
        text,
        delimiter,
        b"\r\n",
        _HTML_HEADER,
        html,
        delimiter,
        b"--\r\n",
    )
