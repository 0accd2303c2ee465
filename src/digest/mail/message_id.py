"""The Message-IDs digest gives its mail: making them, in Python and in SQL, and reading them back.

Each outbox row keeps the Message-ID its message goes out with, so a repeat after a crash
carries the same one and a bounce report that quotes it finds the row. Transactional mail gets
``<random@domain>``; a digest gets ``<e{edition}.{subscriber}.{random}@domain>``, made in SQL
while a whole edition is queued, so a bounce finds its row through the (edition, subscriber)
key without an index on every digest's Message-ID (``delivery/bounces.py``). The random part
makes every one unguessable: a report quoting it is believed, and the ids are not secret.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa

from digest.mail.headers import printable_line

_DIGEST = re.compile(r"<e(\d{1,10})\.(\d{1,10})\.[0-9a-f]{16}@[^<>\s]+>")
_MAX_ID = 2**31 - 1  # the id columns are 32-bit on PostgreSQL
# Printable ASCII only: a Message-ID is stored and looked up, and PostgreSQL refuses NUL.
_WELL_FORMED = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
_SEARCHED = 1000  # characters of a stranger's field worth searching for one
_HEADER = re.compile(rb"^Message-ID:\s*<?([^>\r\n]+)>?", re.IGNORECASE | re.MULTILINE)


def new_message_id(domain: str) -> str:
    """A fresh ``<random@domain>`` Message-ID, for a transactional mail or a preview."""
    return f"<{secrets.token_hex(16)}@{domain}>"


def digest_prefix(edition_id: int) -> str:
    """The start of an edition's Message-IDs: ``<e{edition}.{subscriber}.{random}@domain>``."""
    return f"e{edition_id}"


def digest_message_id_sql(
    prefix: str, subscriber_id: sa.ColumnElement[int], domain: str, dialect: str
) -> sa.ColumnElement[str]:
    """One digest Message-ID per row, as SQL over the row's ``subscriber_id`` column.

    Built in SQL so a million rows never pass through Python; the row keeps it.
    """
    return (
        sa.literal("<")
        + sa.bindparam("mid_prefix", prefix, type_=sa.String)
        + sa.literal(".")
        + sa.cast(subscriber_id, sa.String)
        + sa.literal(".")
        + _random_hex_sql(subscriber_id, dialect)
        + sa.literal("@")
        + sa.bindparam("mid_domain", domain, type_=sa.String)
        + sa.literal(">")
    )


def _random_hex_sql(subscriber_id: sa.ColumnElement[int], dialect: str) -> sa.ColumnElement[str]:
    """16 hex digits per row that nobody who has not seen the row's mail can work out.

    SQLite draws them from its own strong random source. On PostgreSQL, gen_random_uuid() per
    row looked about 20 % slower on a 100,000-row edition (two runs each; docs/benchmarks.md),
    so the digits are md5 of a fresh 128-bit secret (drawn here, kept nowhere) and the
    subscriber id: a reader who sees their own cannot learn the secret, and without it nobody
    can compute another reader's.
    """
    if dialect == "postgresql":
        secret = sa.bindparam("mid_secret", secrets.token_hex(16), type_=sa.String)
        return sa.func.substr(
            sa.func.md5(secret + sa.literal(".") + sa.cast(subscriber_id, sa.String)), 1, 16
        )
    return sa.func.lower(sa.func.hex(sa.func.randomblob(8)))


def digest_of(message_id: str) -> tuple[int, int] | None:
    """(edition id, subscriber id) of a digest's Message-ID, or None for any other.

    This is how a bounce finds its delivery through the (edition, subscriber) key without an
    index on every digest row's Message-ID; the caller still compares the whole Message-ID,
    whose random part a stranger cannot guess.
    """
    match = _DIGEST.fullmatch(message_id)
    if not match:
        return None
    edition_id, subscriber_id = int(match.group(1)), int(match.group(2))
    if not (0 < edition_id <= _MAX_ID and 0 < subscriber_id <= _MAX_ID):
        return None
    return edition_id, subscriber_id


def message_id_in(value: object) -> str | None:
    """The first well-formed ``<left@right>`` Message-ID in ``value`` (printable ASCII only)."""
    if value is None:
        return None
    # A stranger's field: cut short and control characters (NUL, escapes) gone first.
    match = _WELL_FORMED.search(printable_line(str(value)[:_SEARCHED]))
    return match.group(0) if match else None


def header_message_id(data: bytes) -> str | None:
    """The Message-ID header of a whole message, without its angle brackets."""
    head = data.split(b"\r\n\r\n", 1)[0]
    match = _HEADER.search(head)
    return match.group(1).decode("ascii", "replace") if match else None
