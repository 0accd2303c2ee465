"""UTM parameters on the links to posts in mail (pure): the site's own analytics can then tell
visits from a newsletter apart, whatever ``DIGEST_TRACKING`` says.

``utm_source`` is the newsletter's slug, ``utm_medium`` is ``email`` and ``utm_campaign`` names
the mail readably and stably: ``daily-2026-12-02`` for a digest, ``announcement-7``,
``alert-3``. A link that already carries any ``utm_`` parameter keeps its own: whoever wrote
it chose its campaign, and a mix of theirs and ours would say nothing true.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, unquote

MEDIUM = "email"


@dataclass(frozen=True)
class Campaign:
    """What a mail's post links are tagged with: the newsletter (source) and the mail (label)."""

    source: str
    label: str

    def tag(self, url: str) -> str:
        """``url`` with this campaign's parameters (see ``with_utm``)."""
        return with_utm(url, self.source, self.label)


def digest_label(cadence: str, local_date: date) -> str:
    """A digest's campaign: its cadence and the readers' local date, ``daily-2026-12-02``."""
    return f"{cadence}-{local_date.isoformat()}"


def announcement_label(announcement_id: int) -> str:
    """An announcement's campaign: ``announcement-7``."""
    return f"announcement-{announcement_id}"


def alert_label(alert_id: int) -> str:
    """An alert's campaign: ``alert-3``."""
    return f"alert-{alert_id}"


def has_utm(query: str) -> bool:
    """Whether a query string already has a ``utm_`` parameter (any case, encoded or not)."""
    for part in query.replace(";", "&").split("&"):
        if unquote(part.partition("=")[0]).strip().lower().startswith("utm_"):
            return True
    return False


def with_utm(url: str, source: str, campaign: str) -> str:
    """``url`` with ``utm_source``, ``utm_medium=email`` and ``utm_campaign`` added to its query,
    the rest of it (its own query, its fragment after it) exactly as it was.

    Only http(s) URLs are tagged, and never one that has a ``utm_`` parameter already.
    """
    scheme = url.partition(":")[0].lower()
    if scheme not in ("http", "https") or ":" not in url:
        return url
    rest, hash_, fragment = url.partition("#")
    _, question, query = rest.partition("?")
    if question and has_utm(query):
        return url
    params = (
        f"utm_source={quote(source, safe='')}&utm_medium={MEDIUM}"
        f"&utm_campaign={quote(campaign, safe='')}"
    )
    if not question:
        joined = f"{rest}?{params}"
    elif not query or query.endswith("&"):
        joined = f"{rest}{params}"
    else:
        joined = f"{rest}&{params}"
    return joined + hash_ + fragment
