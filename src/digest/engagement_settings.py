"""The engagement settings, mixed into ``config.Settings``: how clicks and opens are counted,
and where webhooks may go.

Declared here rather than in ``config.py``, which they would take past 400 lines.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from digest.tracking import TrackingMode


class EngagementSettings(BaseModel):
    """``DIGEST_TRACKING``, ``DIGEST_TRACK_OPENS``, ``DIGEST_ALLOW_PRIVATE_WEBHOOKS``."""

    tracking: TrackingMode = Field(
        TrackingMode.AGGREGATE,
        description=(
            "link clicks: off (links go straight to the site), aggregate (counts per edition "
            "and link, nothing kept per reader) or per-reader (each reader's clicks kept, "
            "for list hygiene)"
        ),
    )
    track_opens: bool = Field(
        False,
        description="count opens with an image in each mail (proxy fetches reported apart)",
    )
    allow_private_webhooks: bool = Field(
        False, description="let webhooks reach private, loopback and link-local addresses"
    )
    webhook_timeout: float = Field(
        10.0, gt=0, le=120, description="seconds a webhook receiver has to answer one event"
    )
