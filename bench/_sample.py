"""A sample edition shaped like the seed site's front page, shared by the bench scripts."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from digest.compose.select import Candidate, Limits, Profile, Selection, normalize_topics, select

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
LOCAL_DATE = date(2026, 11, 29)
HEADLINES = [
    ("PM Kishida: Japan & NATO to Release Security Document", "World"),
    ("Central Bank Holds Rates Steady as Inflation Cools", "Business"),
    ("City Council Approves New Bike Lanes Downtown", "Local"),
    ("Researchers Map the Deep Ocean Floor in Record Detail", "Science"),
    ("Championship Final Goes to Extra Time in Thriller", "Sport"),
    ("New Exhibition Brings Renaissance Drawings to the Capital", "Culture"),
    ("Heavy Snow Expected Across the North This Weekend", "Weather"),
    ("Start-ups Race to Build Cheaper Batteries for Homes", "Tech"),
    ("Schools Trial a Four-Day Week, With Mixed Results", "Education"),
    ("Hospital Waiting Lists Fall for a Third Month", "Health"),
    ("Historic Bridge Reopens After Two-Year Restoration", "Local"),
    ("Ministers Meet to Discuss Supply Chain Security", "Politics"),
    ("Opinion: What the Summit Means for the Region", "Opinion"),
]
SUMMARY = (
    "Japanese Prime Minister Fumio Kishida announced on Tuesday that Japan and NATO will issue "
    "a new security cooperation document during the trans-Atlantic alliance’s summit taking "
    "place in Lithuania. The summit comes at a time of growing geopolitical concerns."
)


def sample_png(path: Path, width: int = 552, height: int = 310) -> Path:
    """A gradient PNG written without any imaging library: a stand-in for a post's picture."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes((40 + x * 150 // width, 70 + y * 120 // height, 120))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    )
    return path


def sample_posts(image_url: str | None = None, count: int = 13) -> list[Candidate]:
    """``count`` posts of the last day; the first three featured, with a picture."""
    posts = []
    for i in range(count):
        title, topic = HEADLINES[i % len(HEADLINES)]
        at = NOW - timedelta(hours=1 + i)
        posts.append(
            Candidate(
                id=i + 1,
                title=title if i < len(HEADLINES) else f"{title} ({i})",
                link=f"https://news.example.com/2026/11/story-{i + 1}",
                summary=SUMMARY,
                topics=normalize_topics([topic]),
                published_at=at,
                first_seen_at=at,
                featured=i < 3,
                image_url=image_url if i < 3 else None,
                image_alt=f"Picture for: {title}",
                author="Staff reporter" if i % 2 else "",
            )
        )
    return posts


def sample_selection(
    image_url: str | None = None, count: int = 13, max_latest: int = 10
) -> Selection:
    """A first daily digest over the sample posts."""
    limits = Limits(max_latest=max_latest)
    return select(sample_posts(image_url, count), Profile("daily"), NOW, limits)
