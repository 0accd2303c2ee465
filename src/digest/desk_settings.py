"""The desk's settings, mixed into ``config.Settings``: whether there is a desk, and how long
a signed-in session lasts.

Declared here rather than in ``config.py``, which they would take past 400 lines.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeskSettings(BaseModel):
    """``DIGEST_DESK`` and the desk's session and login limits."""

    desk: bool = Field(
        True, description="the web desk for editors under /desk/ (false: every /desk/ page 404s)"
    )
    desk_idle_minutes: int = Field(
        60,
        ge=1,
        le=24 * 60,
        description="minutes without a request after which a desk session ends",
    )
    desk_session_hours: int = Field(
        12, ge=1, le=24 * 30, description="hours after sign-in at which a desk session ends anyway"
    )
    desk_login_limit: int = Field(
        10,
        ge=1,
        le=1000,
        description="failed desk sign-ins per account, and per client address, in 15 minutes",
    )
