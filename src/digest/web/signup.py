"""The subscribe form's fields, read and checked: what the person typed, and the honeypot.

The rules of subscribing (blocked domains, the confirmation cap, the mail) are the library's
(``digest.signup``); this is only the form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from digest.addresses import clean_name, normalize_email
from digest.errors import InvalidInput
from digest.subscriber_fields import parse_cadence, parse_topics

HONEYPOT = "website"


@dataclass(frozen=True)
class SubscribeRequest:
    """A subscribe form, validated: the address normalised, the rest cleaned."""

    email: str
    name: str | None = None
    cadence: str | None = None
    topics: list[str] | None = None
    source: str | None = None
    is_bot: bool = False  # the hidden honeypot field was filled


def parse_request(fields: Mapping[str, Iterable[str]]) -> SubscribeRequest:
    """Validate the fields of a subscribe form; InvalidEmail/InvalidInput say what is wrong."""
    values = {k: list(v) for k, v in fields.items()}

    def one(name: str) -> str | None:
        got = values.get(name)
        return got[0] if got else None

    is_bot = bool((one(HONEYPOT) or "").strip())
    raw_email = one("email")
    if raw_email is None:
        raise InvalidInput("email: an email address is required")
    email = normalize_email(raw_email)
    name = one("name")
    cadence = one("cadence")
    topics_raw = values.get("topics")
    topics = None
    if topics_raw is not None:
        # A checkbox group sends one value per box; a script may send "a,b" in one.
        joined = [part for value in topics_raw for part in value.split(",")]
        topics = parse_topics(joined)
    return SubscribeRequest(
        email=email,
        name=clean_name(name) if name is not None else None,
        cadence=parse_cadence(cadence) if cadence not in (None, "") else None,
        topics=topics,
        source=clean_name(one("source"), limit=200) or None,
        is_bot=is_bot,
    )
