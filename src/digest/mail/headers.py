"""Header fields written by hand: RFC 5322 folding and RFC 2047 encoded words, safe for user text.

The ``email`` package builds the same headers, but at a cost per message that a digest sent to
a hundred thousand people cannot pay; these functions do only what digest's headers need.
Every value passes through ``one_line`` first, so no user text can end a header or start one.
"""

from __future__ import annotations

import base64
import re
from email.utils import parseaddr

import idna

from digest.addresses import clean_name

# Longest line we write in a header (RFC 5322 recommends 78; 998 is the hard limit).
FOLD_AT = 78
# UTF-8 bytes per encoded word: 45 bytes -> 60 base64 chars -> 72 with "=?utf-8?b?" and "?=",
# within the 75 that RFC 2047 allows.
_WORD_BYTES = 45
_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_C1_CONTROLS = re.compile(r"[\x80-\x9f]")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
#: A List-Id's identifier (RFC 2919): dot-atoms, at least two ("news.example.com").
LIST_ID = re.compile(rf"{_ATOM}(?:\.{_ATOM})+")
# A terminal escape sequence as a whole, so that what it wraps stays readable and what it
# carries (an OSC 8 link's target, a title, a colour) goes: ECMA-48 CSI (ESC [ or 8-bit CSI)
# up to its final byte; OSC, DCS, SOS, PM and APC (ESC ] P X ^ _ or their 8-bit forms) up to
# BEL or the string terminator; any other ESC with the one character it introduces.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x7e]?"
)
# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source").
BIDI_CONTROLS = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# Characters that force a display name into a quoted-string (RFC 5322 "specials").
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# What may appear in an address we write: no spaces, controls, brackets, commas or quotes.
_BAD_ADDRESS = re.compile(r'[\s\x00-\x1f\x7f<>(),;:"\\\[\]]')


def one_line(value: str) -> str:
    """``value`` with every control and line break turned into a single space."""
    return " ".join(_CONTROLS.sub(" ", value).split())


def printable_line(value: str) -> str:
    """A stranger's text as one line a terminal shows as it is: ``one_line`` without escape
    sequences (U+009B starts one as ESC [ does), C1 controls or bidirectional overrides.

    The one filter for stored text on its way to a terminal: the CLI prints every stored
    value through it, and replies and reports are stored through it.
    """
    return one_line(_C1_CONTROLS.sub(" ", _BIDI.sub("", _ESCAPES.sub("", value))))


def _needs_encoding(value: str) -> bool:
    # "=?" is encoded too: a literal "=?utf-8?b?...?=" in a name must reach the reader as text,
    # never be decoded by their mail client into something else.
    return not value.isascii() or "=?" in value


def encoded_words(value: str) -> list[str]:
    """``value`` as RFC 2047 base64 encoded words, never splitting a character."""
    raw = value.encode("utf-8")
    if len(raw) <= _WORD_BYTES:
        return [_word(raw)]
    words: list[str] = []
    chunk = b""
    for char in value:
        raw = char.encode("utf-8")
        if len(chunk) + len(raw) > _WORD_BYTES:
            words.append(_word(chunk))
            chunk = b""
        chunk += raw
    if chunk:
        words.append(_word(chunk))
    return words


def _word(raw: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(raw).decode("ascii") + "?="


def fold(name: str, tokens: list[str], sep: str = " ") -> str:
    """``Name: tok sep tok ...`` as a header line, folded before a token that would pass 78."""
    line = name + ":"
    out: list[str] = []
    for i, token in enumerate(tokens):
        piece = (" " if i == 0 else sep) + token
        if i > 0 and len(line) + len(piece) > FOLD_AT:
            out.append(line + sep.rstrip())
            line = " " + token
        else:
            line += piece
    out.append(line)
    return "\r\n".join(out) + "\r\n"


def unstructured(name: str, value: str) -> str:
    """An unstructured header (Subject): plain words, or encoded words when needed."""
    value = one_line(value)
    words = value.split(" ") if value else [""]
    if _needs_encoding(value) or any(len(w) > 900 for w in words):
        # Adjacent encoded words are joined without the space between them when decoded, so
        # the whole value is encoded as one run and its spaces travel inside the words.
        return fold(name, encoded_words(value))
    return fold(name, words)


def phrase(value: str) -> str:
    """A display name as an RFC 5322 phrase: atoms, a quoted-string, or encoded words.

    The result may contain "\\r\\n " folds only between encoded words.
    """
    value = clean_name(value)
    if not value:
        return ""
    if _needs_encoding(value):
        return "\r\n ".join(encoded_words(value))
    if _SPECIALS.search(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def check_address(address: str) -> str:
    """``address`` ready for a header, or ValueError: an IDNA domain, nothing that breaks out.

    A non-ASCII local part is kept as UTF-8 (RFC 6532); it needs a server offering SMTPUTF8.
    """
    local, at, domain = address.partition("@")
    if not at or not local or not domain or _BAD_ADDRESS.search(address) or "@" in domain:
        raise ValueError(f"not a deliverable address for a header: {address!r}")
    if not domain.isascii():
        try:
            # IDNA 2008 with UTS 46 mapping, as email-validator checked it at subscribe time;
            # Python's own "idna" codec is IDNA 2003, which turns straße.de into strasse.de,
            # someone else's domain.
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (UnicodeError, idna.IDNAError) as exc:
            raise ValueError(f"domain cannot be IDNA-encoded: {domain!r}") from exc
    return f"{local}@{domain}"


def mailbox(name: str, address: str) -> str:
    """``Name <address>`` (or just ``address``), the name encoded as needed."""
    address = check_address(address)
    display = phrase(name)
    return f"{display} <{address}>" if display else address


def sender_domain(value: str) -> str:
    """The domain of the address in a From (or Reply-To) value, ``Name <address>`` or a bare
    address, IDNA-encoded and in lower case; ValueError when it holds none."""
    name, address = parseaddr(value)
    mailbox(name, address)  # the whole header must be writable, the name included
    return check_address(address).rpartition("@")[2].lower()


def check_sender(value: str) -> str:
    """``value`` when it is one line naming one writable address (``DIGEST_FROM``, a
    newsletter's From and Reply-To); ValueError saying what is wrong otherwise."""
    if "\r" in value or "\n" in value:
        raise ValueError("must be one line")
    try:
        sender_domain(value)
    except ValueError:
        raise ValueError(f"no valid address in {value!r}") from None
    return value


def msg_id(value: str) -> str:
    """A Message-ID as given, checked to be one ``<left@right>`` token and nothing more."""
    if not re.fullmatch(r"<[^\s<>@]+@[^\s<>@]+>", value):
        raise ValueError(f"not a Message-ID: {value!r}")
    return value
