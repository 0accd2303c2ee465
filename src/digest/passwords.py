"""Desk passwords: the policy a new one must meet, and Argon2id hashing.

The policy follows NIST SP 800-63B: a minimum length, no composition rules, and a refusal of
passwords known to be common (a short list shipped with digest, compared case-insensitively)
or made of the account's own address.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from digest.errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing a megabyte per sign-in attempt would be a way to tie up a worker

# argon2-cffi's defaults are RFC 9106's second recommendation (Argon2id, t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()
# A hash of a password nobody has, verified when an address has no account, so a wrong
# address and a wrong password take the same time.
_DUMMY = _HASHER.hash("no account has this password: it only costs the same time")


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords refused, lower-cased (``samples/common_passwords.txt``)."""
    text = resources.files("digest").joinpath("samples", "common_passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_password(password: str, email: str = "") -> str:
    """``password`` if it meets the policy, else WeakPassword saying why."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if _is_common(lowered):
        raise WeakPassword("that password is on a list of common passwords; choose another")
    local = email.split("@", maxsplit=1)[0].lower()
    if email and (lowered == email.lower() or (len(local) >= 4 and local in lowered)):
        raise WeakPassword("the password must not contain the account's address")
    if len(set(password)) < 4:
        raise WeakPassword("the password repeats too few characters; choose another")
    return password


def _is_common(lowered: str) -> bool:
    """Whether the (lower-cased) password is a common one with padding or none around it.

    Every place the word could sit is tried, not only what is left once the padding is
    stripped: that would eat the digits of a word that ends in digits ("password1234!")."""
    size = len(lowered)
    head = size - len(lowered.lstrip("0123456789!.?"))  # the padding it starts with
    tail = size - len(lowered.rstrip("0123456789!.?"))  # and ends with
    for word in common_passwords():
        # The word must begin within the leading padding and end within the trailing one.
        first, last = max(0, size - tail - len(word)), min(head, size - len(word))
        if any(lowered.startswith(word, start) for start in range(first, last + 1)):
            return True
    return False


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password``, in the PHC string form."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; with no hash (no account), False in the
    same time a real check takes."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(password_hash)
