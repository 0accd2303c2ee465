"""The subscribe form's fields, read and checked: what the person typed, and the honeypot.

The rules of subscribing (blocked domains, the confirmation cap, the mail) are the library's
(``digest.signup``); this is only the form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from digest.addresses import clean_name, normalize_email
from digest.errors import DigestError, InvalidEmail, InvalidInput
from digest.subscriber_fields import parse_cadence, parse_flag, parse_timezone, parse_topics

HONEYPOT = "website"


@dataclass(frozen=True)
class SubscribeRequest:
    """A subscribe form, validated: the address normalised, the rest cleaned."""

    email: str
    name: str | None = None
    cadence: str | None = None
    topics: list[str] | None = None
    timezone: str | None = None  # None: none given (the server's default for a new reader)
    source: str | None = None
    is_bot: bool = False  # the hidden honeypot field was filled
    newsletters: tuple[int, ...] = ()  # ids asked for; empty: the first the page offers
    alerts: bool = False  # breaking-news alerts from those asked for that offer them


@dataclass(frozen=True)
class Refused:
    """A subscribe form that does not pass: what was typed, and what is wrong, by field."""

    typed: dict[str, list[str]]
    errors: dict[str, DigestError]  # in the form's order: the first is the one to raise

    def first(self) -> DigestError:
        """The error a program gets (JSON): the first field's."""
        return next(iter(self.errors.values()))

    def messages(self) -> dict[str, str]:
        """Each field's reason, as a sentence for the page."""
        return {field: str(error) for field, error in self.errors.items()}


def check_request(
    fields: Mapping[str, Iterable[str]], offered: Mapping[str, int] | None = None
) -> SubscribeRequest | Refused:
    """Validate every field of a subscribe form: the request, or each field's problem.

    ``offered`` maps the slugs the public page offers (former slugs too) to newsletter ids; a
    private, archived or unknown slug is refused alike, so the form lists nothing private.
    """
    values = {k: list(v) for k, v in fields.items()}

    def one(name: str) -> str | None:
        got = values.get(name)
        return got[0] if got else None

    errors: dict[str, DigestError] = {}
    email = cadence = topics = timezone = None
    try:
        raw_email = one("email")
        if raw_email is None:
            raise InvalidInput("email: an email address is required")
        email = normalize_email(raw_email)
    except (InvalidEmail, InvalidInput) as exc:
        errors["email"] = exc
    try:
        raw_cadence = one("cadence")
        cadence = parse_cadence(raw_cadence) if raw_cadence not in (None, "") else None
    except InvalidInput as exc:
        errors["cadence"] = exc
    try:
        if (topics_raw := values.get("topics")) is not None:
            # A checkbox group sends one value per box; a script may send "a,b" in one.
            topics = parse_topics([part for value in topics_raw for part in value.split(",")])
    except InvalidInput as exc:
        errors["topics"] = exc
    chosen: tuple[int, ...] = ()
    try:
        chosen = _newsletters(values.get("newsletters"), offered or {})
    except InvalidInput as exc:
        errors["newsletters"] = exc
    try:
        # Filled by the page's script from the browser; empty with scripts off.
        timezone = parse_timezone(one("timezone"), "") or None
    except InvalidInput as exc:
        errors["timezone"] = exc
    alerts = False
    try:
        # An unticked checkbox sends nothing: absent is "no", as it is for a program.
        alerts = parse_flag(one("alerts"))
    except InvalidInput as exc:
        errors["alerts"] = exc
    if errors or email is None:
        return Refused(values, errors)
    name = one("name")
    return SubscribeRequest(
        email=email,
        name=clean_name(name) if name is not None else None,
        cadence=cadence,
        topics=topics,
        timezone=timezone,
        source=clean_name(one("source"), limit=200) or None,
        is_bot=bool((one(HONEYPOT) or "").strip()),
        newsletters=chosen,
        alerts=alerts,
    )


def _newsletters(raw: list[str] | None, offered: Mapping[str, int]) -> tuple[int, ...]:
    """The ids of the newsletters a form asks for ("a,b" or one value per checkbox); empty
    when it names none (the caller's default applies)."""
    slugs = [part.strip().lower() for value in raw or () for part in value.split(",")]
    slugs = [s for s in slugs if s]
    if len(slugs) > 50:
        raise InvalidInput("newsletters: too many newsletters named")
    ids: dict[int, None] = {}
    for slug in slugs:
        if slug not in offered:
            raise InvalidInput(f"newsletters: there is no newsletter {slug[:64]!r} to subscribe to")
        ids[offered[slug]] = None
    return tuple(ids)


def parse_request(fields: Mapping[str, Iterable[str]]) -> SubscribeRequest:
    """Validate the fields of a subscribe form; InvalidEmail/InvalidInput say what is wrong."""
    checked = check_request(fields)
    if isinstance(checked, Refused):
        raise checked.first()
    return checked
