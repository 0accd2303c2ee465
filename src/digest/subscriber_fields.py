"""The fields a person, a form or a file gives for a subscriber, checked and cleaned.

Pure: no store. The CSV import, the public form, the preference centre and the admin API all
parse through here, so a value means the same whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from digest.addresses import clean_name
from digest.errors import InvalidInput
from digest.periods import check_timezone
from digest.states import Cadence, SubscriberStatus

MAX_TOPICS = 50
MAX_TOPIC_LENGTH = 100


@dataclass(frozen=True)
class Consent:
    """The consent record of a subscription: when, from where, through what, under which words."""

    at: datetime
    ip: str | None = None
    user_agent: str | None = None
    source: str | None = None
    wording: str | None = None


def consent_values(consent: Consent) -> dict[str, object]:
    """The consent columns of a subscriber, as stored: cleaned and cut to their column sizes."""
    return {
        "consent_at": consent.at,
        "consent_ip": (consent.ip or None) and consent.ip[:64],
        "consent_user_agent": (consent.user_agent or None)
        and clean_name(consent.user_agent, limit=512),
        "consent_source": (consent.source or None) and clean_name(consent.source, limit=200),
        "consent_wording": (consent.wording or None) and consent.wording[:32],
    }


def parse_cadence(value: str | None, default: str = Cadence.DAILY.value) -> str:
    """``daily`` or ``weekly`` (any case); empty means the default."""
    if value is None or not str(value).strip():
        return default
    text = str(value).strip().lower()
    if text not in (c.value for c in Cadence):
        raise InvalidInput(f"cadence must be daily or weekly, not {value!r}")
    return text


def parse_status(value: str | None, default: str) -> str:
    """A subscriber status name; empty means the default."""
    if value is None or not str(value).strip():
        return default
    text = str(value).strip().lower()
    if text not in (s.value for s in SubscriberStatus):
        names = ", ".join(s.value for s in SubscriberStatus)
        raise InvalidInput(f"status must be one of {names}, not {value!r}")
    return text


def parse_topics(value: str | Iterable[str] | None) -> list[str]:
    """Topics from ``"a, b"``, ``"a;b"`` or a list: trimmed, de-duplicated, order kept."""
    if value is None:
        return []
    parts: Iterable[str]
    if isinstance(value, str):
        parts = value.replace(";", ",").replace("|", ",").split(",")
    else:
        parts = value
    seen: dict[str, None] = {}
    for part in parts:
        topic = clean_name(str(part), limit=MAX_TOPIC_LENGTH)
        if topic and topic.casefold() not in {t.casefold() for t in seen}:
            seen[topic] = None
    if len(seen) > MAX_TOPICS:
        raise InvalidInput(f"at most {MAX_TOPICS} topics")
    return list(seen)


def parse_timezone(value: str | None, default: str) -> str:
    """An IANA timezone name; empty means the default."""
    if value is None or not str(value).strip():
        return default
    name = str(value).strip()
    try:
        check_timezone(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return name


def parse_hour(value: str | int | None, default: int) -> int:
    """A local hour, 0 to 23; empty means the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        hour = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"send hour must be a whole number 0-23, not {value!r}") from None
    if not 0 <= hour <= 23:
        raise InvalidInput(f"send hour must be 0-23, not {hour}")
    return hour


#: What a yes/no field (a form's checkbox, an import's ``alerts`` column) reads as yes or no.
TRUTHY = frozenset({"1", "true", "yes", "y", "on"})
FALSY = frozenset({"0", "false", "no", "n", "off"})


def parse_flag(value: str | bool | None, label: str = "alerts") -> bool:
    """A yes/no value: 1/true/yes/y/on or 0/false/no/n/off (any case); empty means no.

    Anything else is refused (InvalidInput naming ``label``) rather than guessed: a typo in an
    opt-in must not opt anyone in.
    """
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().casefold()
    if text in TRUTHY:
        return True
    if not text or text in FALSY:
        return False
    raise InvalidInput(f"{label} must be 1/true/yes/on or 0/false/no/off, not {str(value)[:40]!r}")
