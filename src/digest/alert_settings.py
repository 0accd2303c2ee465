"""The settings of the breaking-news lane, mixed into ``config.Settings``: every newsletter's
defaults for its interruption budget, quiet hours, how long an alert may still go out, and
the feed categories that make a post breaking.

Declared here rather than in ``config.py``, which they would take past 400 lines. Each
newsletter may set its own (``digest newsletters edit``); these apply where it has none.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from digest.quiet_hours import QuietHours


class AlertSettings(BaseModel):
    """The ``DIGEST_ALERT_*`` and ``DIGEST_QUIET_HOURS`` settings."""

    alert_budget: int = Field(
        2, ge=0, le=24, description="most breaking-news alerts per reader per local day"
    )
    quiet_hours: str = Field(
        "22:00-07:00",
        description="local hours in which no alert goes out (HH:MM-HH:MM; 'off' for none)",
    )
    alert_expiry_hours: float = Field(
        3.0,
        gt=0,
        le=48,
        description="hours after which an alert not yet sent goes into the next digest instead",
    )

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        return QuietHours.parse(value).text
