"""What an email address is to digest: its normalised form, its one-way hash, safe display names.

Pure functions, no I/O: email-validator checks syntax only (no DNS on any request path).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

from digest.errors import InvalidEmail

if TYPE_CHECKING:
    from email_validator import EmailNotValidError

MAX_EMAIL_LENGTH = 254
MAX_LOCAL_LENGTH = 64
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# C0/C1 controls, line and paragraph separators, and bidi overrides: none belongs in a name or
# a header, and CR/LF would let someone add headers of their own. Lone surrogates (JSON's
# "\ud800") cannot be stored as UTF-8 at all.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ENCODED_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?[^?]*\?=")


def normalize_email(raw: str) -> str:
    """The one spelling under which an address is stored: ``Ann@Example.COM`` is ``ann@...``.

    Internationalised addresses (``josé@bücher.example``) are accepted. The local part is
    lower-cased too: in practice no mailbox provider distinguishes case, and treating
    ``Ann@`` and ``ann@`` as two people only produces duplicate subscriptions.
    """
    if not isinstance(raw, str):
        raise InvalidEmail("an email address is required")
    candidate = unicodedata.normalize("NFC", raw.strip())
    if not candidate:
        raise InvalidEmail("an email address is required")
    if len(candidate) > MAX_EMAIL_LENGTH or _UNSAFE.search(candidate):
        raise InvalidEmail("that is not a valid email address")
    local, at, domain = candidate.rpartition("@")
    if at and len(local) <= MAX_LOCAL_LENGTH and _DOT_ATOM.fullmatch(local):
        # The common case, a plain ASCII local part: only the domain needs email-validator's
        # rules (IDNA, special-use names, TLDs), and a list has few distinct domains.
        address = f"{local}@{_domain(domain)}".lower()
        if len(address.encode()) > MAX_EMAIL_LENGTH:
            raise InvalidEmail("that is not a valid email address (it is too long)")
        return address
    return _validated(candidate)


def spellings(raw: str) -> Iterator[str]:
    """The stored spellings ``raw`` may name, cheapest first: as typed (trimmed and lower-cased)
    when that is plain ASCII, then ``normalize_email(raw)``, validated only when asked for.

    Every stored address is normalised, normalising one again changes nothing, and for ASCII
    ``normalize_email`` ignores case: a row found under the first spelling is the one the
    second names. So a lookup that finds it never pays for validating; a miss still raises
    InvalidEmail for what is not an address.
    """
    typed = raw.strip() if isinstance(raw, str) else ""
    plain = typed.lower() if typed and typed.isascii() else None
    if plain is not None:
        yield plain
    address = normalize_email(raw)
    if address != plain:
        yield address


def _validated(candidate: str) -> str:
    # Imported here: compiling its patterns is a noticeable part of a command's start-up, and
    # a lookup by plain_spelling or a known domain (the cache below) never needs it.
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"that is not a valid email address ({_reason(exc)})") from None
    return result.normalized.lower()


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    """The normalised domain, validated once per distinct spelling."""
    return _validated(f"x@{domain}").rpartition("@")[2]


def email_hash(email: str) -> str:
    """A one-way hash of the normalised address: what the suppression list keeps."""
    return hash_normalized(normalize_email(email))


def hash_normalized(email: str) -> str:
    """``email_hash`` of an address already normalised (skips validating it again)."""
    return hashlib.sha256(email.encode()).hexdigest()


def email_domain(email: str) -> str:
    """The domain part of a normalised address."""
    return email.rpartition("@")[2]


def clean_name(raw: str | None, *, limit: int = 200) -> str:
    """A display name safe for pages and headers: one line, no controls, no encoded words.

    Encoded words (``=?utf-8?b?...?=``) are removed because a name is data, never markup for the
    mail header encoder to reinterpret.
    """
    if not raw:
        return ""
    text = unicodedata.normalize("NFC", str(raw))
    text = _UNSAFE.sub(" ", text)
    text = _ENCODED_WORD.sub("", text)
    text = " ".join(text.split())
    return text[:limit].strip()


def _reason(exc: EmailNotValidError) -> str:
    text = str(exc).strip().rstrip(".")
    # email-validator's messages are full sentences; keep the first, lower-cased, for one line.
    first = text.split(". ")[0]
    return first[:1].lower() + first[1:] if first else "invalid"
