"""Which domains a mail names and whether they align (DMARC, RFC 7489 section 3.1), pure.

Relaxed alignment compares organisational domains. The real rule reads the Public Suffix
List; this keeps the common two-label suffixes (``co.uk``, ``com.au``...) instead, which is
right for the domains newsrooms send from and costs no download.
"""

from __future__ import annotations

# Country-code second-level labels under which organisations register (co.uk, com.au, ne.jp).
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "go", "ne", "net", "or", "org"})

#: Mailbox providers whose DMARC policy forbids (or will soon forbid) mail that other servers
#: send with their domain in From: a newsletter from one of them lands in spam or nowhere.
FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "yandex.com",
        "proton.me",
        "protonmail.com",
        "zoho.com",
    }
)


def domain_of(address: str) -> str:
    """The domain of an address, in lower case."""
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def organizational(domain: str) -> str:
    """The organisational domain: ``news.example.com`` -> ``example.com``,
    ``news.example.co.uk`` -> ``example.co.uk``."""
    labels = domain.rstrip(".").lower().split(".")
    keep = 2
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        keep = 3
    return ".".join(labels[-keep:])


def aligned(from_domain: str, other: str, *, strict: bool = False) -> bool:
    """Whether ``other`` (a DKIM ``d=`` or the envelope domain) aligns with the From domain."""
    if strict:
        return from_domain.lower() == other.lower()
    return organizational(from_domain) == organizational(other)


def is_free_mail(domain: str) -> bool:
    """Whether ``domain`` is a free mailbox provider's (which no newsletter may send as)."""
    return domain.lower() in FREE_MAIL
