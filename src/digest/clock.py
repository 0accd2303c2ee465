"""The one clock of the domain: aware UTC time, so no code ever compares naive and aware times."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
