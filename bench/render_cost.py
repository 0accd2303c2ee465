"""Cost of one digest message: ``assemble`` against a full ``EmailMessage`` build, same process.

Run: .venv/bin/python bench/render_cost.py [--messages 3000] [--write docs/bench-render.md]

Both sides produce the same mail for the same person (placeholders filled, List-Unsubscribe,
multipart/alternative, quoted-printable); the baseline is what a straightforward sender does
per subscriber with the ``email`` package. Also timed: ``render_body`` of a shared body
(templates + css_inline), fresh and from the renderer's cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _sample import LOCAL_DATE, sample_posts, sample_selection

from digest.compose.render import DigestRenderer
from digest.compose.select import Limits, Profile, select
from digest.config import load_settings
from digest.mail.message import (
    EMAIL,
    NAME,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Personal,
    Sender,
    assemble,
)

COMMAND = ".venv/bin/python bench/render_cost.py --write docs/bench-render.md"


def people(count: int) -> list[Personal]:
    """Distinct recipients, as the worker would see them."""
    now = datetime.now(UTC)
    return [
        Personal(
            to_email=f"reader{i}@example.org",
            to_name=f"Reader Nümber {i}",
            message_id=f"<d{i}.edition1@example.com>",
            date=now,
            unsubscribe_url=f"https://news.example.com/unsubscribe/tok{i:08d}_abcdefghijklmnop",
            preferences_url=f"https://news.example.com/preferences/tok{i:08d}_abcdefghijklmno",
        )
        for i in range(count)
    ]


def baseline(subject: str, text: str, html: str, p: Personal, from_header: str) -> bytes:
    """One message the usual way: an EmailMessage per person, filled, built and flattened."""

    def fill(s: str) -> str:
        return (
            s.replace(EMAIL, p.to_email)
            .replace(NAME, p.to_name)
            .replace(UNSUBSCRIBE_URL, p.unsubscribe_url or "")
            .replace(PREFERENCES_URL, p.preferences_url or "")
        )

    msg = EmailMessage()
    msg["From"] = from_header
    msg["To"] = f"{p.to_name} <{p.to_email}>"
    msg["Subject"] = subject
    msg["Date"] = p.date
    msg["Message-ID"] = p.message_id
    msg["List-Id"] = "<digest.example.com>"
    msg["List-Unsubscribe"] = f"<{p.unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(fill(text), cte="quoted-printable")
    msg.add_alternative(fill(html), subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=SMTP)


def per_call(fn: Callable[[int], object], count: int, rounds: int = 7) -> float:
    """Best over ``rounds`` of the mean seconds per call of ``fn(i)`` for i in range(count).

    The best round, as ``timeit`` advises: slower rounds measure other load on the machine.
    """
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(count):
            fn(i)
        results.append((time.perf_counter() - start) / count)
    return min(results)


def main() -> None:
    """Time both ways and print (or write) a markdown fragment."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            site_name="The Daily Brief",
            secret_key="x" * 40,
            var_dir=Path(tmp),
            DIGEST_FROM="The Daily Brief <news@example.com>",
        )
    sender = Sender.from_settings(settings)
    renderer = DigestRenderer(settings)
    # 3 featured + 12 latest: a digest message of about 30 KB.
    selection = sample_selection("https://news.example.com/img/lead.jpg", 15, max_latest=12)
    body = renderer.render_body(
        selection, cadence="daily", local_date=LOCAL_DATE, archive_url="https://x.example/a/1"
    ).content
    who = people(args.messages)
    size = len(assemble(body.subject, body.text, body.html, who[0], sender))
    base_size = len(baseline(body.subject, body.text, body.html, who[0], sender.from_header))

    fast = per_call(lambda i: assemble(body.subject, body.text, body.html, who[i], sender),
                    args.messages)  # fmt: skip
    slow = per_call(
        lambda i: baseline(body.subject, body.text, body.html, who[i], sender.from_header),
        min(args.messages, max(args.messages // 5, 200)),
    )
    # A fresh body each call: a new renderer cache per selection variant.
    posts = sample_posts("https://news.example.com/img/lead.jpg")
    variants = [select(posts[: 4 + i % 9], Profile("daily"), selection.window_end, Limits())
                for i in range(9)]  # fmt: skip

    def fresh(i: int) -> object:
        renderer._bodies.clear()  # measure the render itself, not the cache
        return renderer.render_body(variants[i % 9], cadence="daily", local_date=LOCAL_DATE)

    render_fresh = per_call(fresh, 200)
    render_cached = per_call(
        lambda i: renderer.render_body(selection, cadence="daily", local_date=LOCAL_DATE), 5000
    )
    lines = [
        "## Render and message cost",
        "",
        f"Command: `{COMMAND}`  ",
        f"Python {platform.python_version()} on {platform.machine()}; "
        f"digest message of {size / 1024:.1f} KB ({base_size / 1024:.1f} KB via EmailMessage), "
        f"{len(selection.post_ids)} posts.",
        "",
        "| step | per call | ratio |",
        "| --- | ---: | ---: |",
        f"| baseline: `EmailMessage` build + flatten, per message | {slow * 1e3:.3f} ms | 1.00 |",
        f"| `assemble` (shared body pre-encoded), per message | {fast * 1e3:.3f} ms | "
        f"{fast / slow:.3f} ({slow / fast:.0f}x faster) |",
        f"| `render_body`, fresh (Jinja2 + css_inline), per body | {render_fresh * 1e3:.3f} ms | "
        f"{render_fresh / slow:.2f} |",
        f"| `render_body`, same body again (cache hit) | {render_cached * 1e3:.4f} ms | "
        f"{render_cached / slow:.4f} |",
        "",
        "Ratios are against the baseline measured in the same run; each figure is the best of",
        f"7 rounds (load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs).",
        "",
        "Screenshots of the same digest (headless Chromium, 600 px and 375 px, and dark mode):",
        "`.venv/bin/python bench/screenshots.py` writes `docs/digest-600.png`, "
        "`docs/digest-375.png` and `docs/digest-dark-375.png`.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
