"""Which domains a mail names and whether they align (DMARC, RFC 7489 section 3.1), pure.

Relaxed alignment compares organisational domains, which RFC 7489 section 3.2 finds with the
Public Suffix List: the public suffix plus one label. The list comes bundled offline with the
``publicsuffixlist`` package (updated with it), read once on first use.

The whole list is used, its private section too (``github.io``, ``herokuapp.com``...): RFC
7489 names the list without leaving a section out, the large receivers read it whole, and a
private suffix is exactly where unrelated people share a parent domain, so ``a.github.io``
must not align with ``b.github.io``. A name under an unknown top-level domain counts that
domain as its suffix (the list's ``*`` default rule).
"""

from __future__ import annotations

from functools import cache

from publicsuffixlist import PublicSuffixList

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


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the bundled list; ~70 ms to read, so once, and not at import


def organizational(domain: str) -> str:
    """The organisational domain: ``news.example.com`` -> ``example.com``,
    ``a.b.example.co.uk`` -> ``example.co.uk``, ``x.github.io`` -> itself; a public suffix
    itself (``co.uk``) is its own."""
    name = domain.rstrip(".").lower()
    return _suffixes().privatesuffix(name) or name


def aligned(from_domain: str, other: str, *, strict: bool = False) -> bool:
    """Whether ``other`` (a DKIM ``d=`` or the envelope domain) aligns with the From domain."""
    if strict:
        return from_domain.lower() == other.lower()
    return organizational(from_domain) == organizational(other)


def is_free_mail(domain: str) -> bool:
    """Whether ``domain`` is a free mailbox provider's (which no newsletter may send as)."""
    return domain.lower() in FREE_MAIL
