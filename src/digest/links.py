"""The public URLs digest puts in mail and pages, each built in one place.

The web app (``web/``) serves exactly these paths; a token in a path is URL-safe base64.
"""

from __future__ import annotations

from datetime import datetime

from digest.config import Settings
from digest.tokens import Purpose, sign

CONFIRM_PATH = "/confirm/{token}"
UNSUBSCRIBE_PATH = "/unsubscribe/{token}"
PREFERENCES_PATH = "/preferences/{token}"
ARCHIVE_PATH = "/archive/{edition_id}"
STAY_PATH = "/stay/{token}"
#: Paths whose last segment is a capability token (whoever holds it acts as the reader): kept
#: out of every log line and every shared cache. ``/r/`` is the tracked links' redirect, ``/o/``
#: the open pixel (under per-reader tracking both name the reader), ``/stay/`` list
#: hygiene's "still want this?" answer.
TOKEN_PATH_PREFIXES = ("/confirm/", "/unsubscribe/", "/preferences/", "/r/", "/o/", "/stay/")


def _token(settings: Settings, purpose: Purpose, subscriber_id: int, email: str) -> str:
    return sign(settings.secret, purpose, subscriber_id, email)


def confirm_url(
    settings: Settings, subscriber_id: int, email: str, *, requested_at: datetime | None = None
) -> str:
    """The link in a confirmation mail (its GET shows a button; only the POST confirms).

    It answers only the request made at ``requested_at`` (the subscriber's ``consent_at``):
    once the address is asked for again, an older mail's link confirms nothing.
    """
    token = sign(
        settings.secret,
        Purpose.CONFIRM,
        subscriber_id,
        email,
        now=requested_at,
        bound_to=requested_at,
    )
    return settings.base_url + CONFIRM_PATH.format(token=token)


#: The scope of an unsubscribe link that leaves every newsletter.
ALL = "all"


#: The scope of a link that turns off one newsletter's alerts: "alerts2".
ALERTS_SCOPE = "alerts"


def unsubscribe_url(
    settings: Settings, subscriber_id: int, email: str, newsletter_id: int | None = None
) -> str:
    """The List-Unsubscribe and footer link; a POST to it unsubscribes at once (RFC 8058)
    from that newsletter, or from every one without ``newsletter_id``."""
    scope = ALL if newsletter_id is None else str(newsletter_id)
    token = sign(settings.secret, Purpose.UNSUBSCRIBE, subscriber_id, email, scope=scope)
    return settings.base_url + UNSUBSCRIBE_PATH.format(token=token)


def alerts_off_url(settings: Settings, subscriber_id: int, email: str, newsletter_id: int) -> str:
    """An alert's List-Unsubscribe and footer link: a POST to it turns off that newsletter's
    alerts at once (RFC 8058) and keeps its digest. The unsubscribe route, scope ``alertsN``."""
    scope = f"{ALERTS_SCOPE}{newsletter_id}"
    token = sign(settings.secret, Purpose.UNSUBSCRIBE, subscriber_id, email, scope=scope)
    return settings.base_url + UNSUBSCRIBE_PATH.format(token=token)


def unsubscribe_token_in(url: str) -> str | None:
    """The token of an ``unsubscribe_url``, for the mailto unsubscribe's subject line."""
    _base, found, token = url.rpartition(UNSUBSCRIBE_PATH.removesuffix("{token}"))
    return token if found and token and "/" not in token else None


def preferences_url(settings: Settings, subscriber_id: int, email: str) -> str:
    """The preference centre of this subscriber."""
    token = _token(settings, Purpose.PREFERENCES, subscriber_id, email)
    return settings.base_url + PREFERENCES_PATH.format(token=token)


def stay_url(settings: Settings, subscriber_id: int, email: str, newsletter_id: int) -> str:
    """List hygiene's "Yes, keep sending" link for one newsletter (its GET shows a button;
    only the POST keeps them, or brings back a reader it retired)."""
    token = sign(settings.secret, Purpose.STAY, subscriber_id, email, scope=str(newsletter_id))
    return settings.base_url + STAY_PATH.format(token=token)


def archive_url(settings: Settings, edition_id: int) -> str:
    """The web version of an edition (no personal links)."""
    return settings.base_url + ARCHIVE_PATH.format(edition_id=edition_id)
