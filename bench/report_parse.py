"""Cost of reading one bounce report: ``parse_report`` against the ``email`` package's default
policy on the same bytes, in the same process.

Run: .venv/bin/python bench/report_parse.py

The reports come from strangers, so the worst case matters as much as the usual one. Cases:
the Postfix DSN in ``tests/bounces/`` (the usual report, ~2 KB); the same DSN quoting a 30 KB
digest; and a DSN whose Diagnostic-Code is a run of N encoded words, the input on which the
default policy's header parser grows much faster than linearly. The baseline parses the same
bytes with ``email.message_from_bytes(..., policy=email.policy.default)`` and reads the same
fields, which is what a straightforward reader (and digest's first version) does.
"""

from __future__ import annotations

import email
import email.policy
import sys
import time
from collections.abc import Callable
from pathlib import Path

from digest.delivery.dsn import parse_report

ROOT = Path(__file__).resolve().parents[1]
DSN = (ROOT / "tests" / "bounces" / "postfix-user-unknown.eml").read_bytes()
BASELINE_CAP = 30.0  # seconds: a baseline slower than this is reported as "> 30 s"


def baseline(raw: bytes) -> None:
    """The default-policy read of the same fields."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                for name in ("Final-Recipient", "Action", "Status", "Diagnostic-Code"):
                    str(block.get(name, ""))


def timed(fn: Callable[[bytes], object], raw: bytes, repeat: int) -> float:
    """Best seconds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(raw)
        best = min(best, time.perf_counter() - t0)
        if best > BASELINE_CAP:
            break
    return best


def cases() -> list[tuple[str, bytes]]:
    quoted = DSN.replace(
        b"Date: Sun, 29 Nov 2026 07:00:05 +0000\n", b"X-Pad: " + b"x" * 30_000 + b"\n"
    )
    found = [("Postfix DSN, 2 KB", DSN), ("DSN quoting 30 KB", quoted)]
    for n in (2_000, 8_000, 15_000, 30_000):
        words = b" ".join([b"=?utf-8?q?a?="] * n)
        raw = DSN.replace(b"Diagnostic-Code: smtp; 550", b"Diagnostic-Code: smtp; " + words)
        found.append((f"{n:,} encoded words ({len(raw) / 1e6:.2f} MB)", raw))
    return found


def main() -> None:
    print("| report | parse_report | default policy | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, raw in cases():
        repeat = 50 if len(raw) < 100_000 else 3
        ours = timed(parse_report, raw, repeat)
        theirs = timed(baseline, raw, repeat if len(raw) < 100_000 else 1)
        shown = f"> {BASELINE_CAP:.0f} s" if theirs > BASELINE_CAP else f"{theirs * 1000:,.1f} ms"
        print(f"| {name} | {ours * 1000:,.2f} ms | {shown} | {theirs / ours:,.0f}x |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
