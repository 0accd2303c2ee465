"""The shipped sample feed, with dates moved so it always looks fresh whenever the demo runs.

``digest demo`` imports ``load_sample_feed(now)``: the newest item one hour before ``now``, the
others spread over the two days before it, in the order the file lists them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import format_datetime
from importlib import resources

SAMPLE_NAME = "sample_feed.xml"
NEWEST_AGE = timedelta(hours=1)
SPREAD = timedelta(days=2)
_PUBDATE = re.compile(rb"<pubDate>[^<]*</pubDate>")
_BUILD_DATE = re.compile(rb"<lastBuildDate>[^<]*</lastBuildDate>")


def sample_feed_bytes() -> bytes:
    """The sample feed exactly as shipped (its dates are placeholders)."""
    return resources.files("digest").joinpath("samples", SAMPLE_NAME).read_bytes()


def sample_dates(now: datetime, count: int) -> list[datetime]:
    """``count`` dates, newest first: ``now`` minus one hour, then evenly back over ~2 days."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    newest = now - NEWEST_AGE
    if count <= 1:
        return [newest][:count]
    step = SPREAD / (count - 1)
    # Whole minutes read better in a digest than odd seconds.
    return [(newest - step * i).replace(second=0, microsecond=0) for i in range(count)]


def load_sample_feed(now: datetime) -> bytes:
    """The sample RSS feed with pubDates rewritten relative to ``now`` (an aware datetime)."""
    body = sample_feed_bytes()
    dates = sample_dates(now, len(_PUBDATE.findall(body)))
    stamps = iter(dates)

    def pub_date(_match: re.Match[bytes]) -> bytes:
        return b"<pubDate>" + format_datetime(next(stamps), usegmt=False).encode() + b"</pubDate>"

    body = _PUBDATE.sub(pub_date, body)
    if dates:
        build = format_datetime(dates[0], usegmt=False).encode()
        body = _BUILD_DATE.sub(b"<lastBuildDate>" + build + b"</lastBuildDate>", body)
    return body
