"""Benchmark: the CPU it takes to turn one built message into each email service's request.

The messages are digests as the worker assembles them (``mail.message.assemble``, ~32 KB,
text and HTML, each reader's own links), one per reader. Each service's request builder runs
over the same readers: SES (JSON with the message in base64, SigV4 through botocore), Postmark
(the message taken apart into JSON fields), Mailgun (multipart form). Rounds alternate the
services; the median and the lowest of the rounds are printed, in microseconds per message.
``--before SRC`` adds the same builders imported from SRC (the ``src`` folder of an older
checkout), alternating with the current ones.

    .venv/bin/python bench/esp_build.py [--readers 200] [--rounds 7] [--before SRC]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).parent))

from botocore.credentials import Credentials
from send_throughput import body_text

from digest.config import Settings
from digest.mail.message import Personal, Sender, assemble

Builder = Callable[[str, bytes], object]


def messages(readers: int, size: int) -> list[tuple[str, bytes]]:
    """(recipient, message) of ``readers`` readers of one digest."""
    settings = Settings(from_="The Daily Brief <news@example.org>", secret_key="k" * 40)
    sender = Sender.from_settings(settings)
    text, html = body_text(size)
    out = []
    for i in range(readers):
        rcpt = f"reader{i}@example.org"
        personal = Personal(
            to_email=rcpt,
            to_name=f"Reader {i}",
            message_id=f"<{i}.{i * 7919:x}@example.org>",
            date=datetime.now(UTC),
            unsubscribe_url=f"https://news.example.org/u/{i}.tok",
            preferences_url=f"https://news.example.org/p/{i}.tok",
            unsubscribe_all_url=f"https://news.example.org/ua/{i}.tok",
        )
        out.append((rcpt, assemble("The Daily Brief", text, html, personal, sender)))
    return out


def builders(delivery: ModuleType, targets: ModuleType) -> dict[str, Builder]:
    """Each service's request builder, from a ``digest.delivery`` package (current or older)."""
    ses = importlib.import_module(delivery.__name__ + ".ses")
    postmark = importlib.import_module(delivery.__name__ + ".postmark")
    mailgun = importlib.import_module(delivery.__name__ + ".mailgun")
    endpoint = "http://127.0.0.1:9"
    ses_requests = ses.SesRequests(
        targets.parse_esp_url(f"ses://eu-west-1?endpoint={endpoint}"), Credentials("AKID", "S")
    )
    pm = postmark.postmark_transport(
        targets.parse_esp_url(f"postmark://token@?endpoint={endpoint}"),
        connections=1,
        timeout=1,
    )
    mg = mailgun.mailgun_transport(
        targets.parse_esp_url(f"mailgun://key@mg.example.org?endpoint={endpoint}"),
        connections=1,
        timeout=1,
    )
    return {
        "ses": lambda rcpt, data: ses_requests.build("bounces@example.org", rcpt, data),
        "postmark": lambda rcpt, data: pm.build("bounces@example.org", rcpt, data),
        "mailgun": lambda rcpt, data: mg.build("bounces@example.org", rcpt, data),
    }


def older(src: Path) -> dict[str, Builder]:
    """The builders of the checkout whose ``src`` folder is ``src``, imported beside ours."""
    current = {k: v for k, v in sys.modules.items() if k == "digest" or k.startswith("digest.")}
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, str(src))
    try:
        delivery = importlib.import_module("digest.delivery")
        found = builders(delivery, importlib.import_module("digest.delivery.esp_targets"))
    finally:
        sys.path.remove(str(src))
        for name in [k for k in sys.modules if k == "digest" or k.startswith("digest.")]:
            del sys.modules[name]
        sys.modules.update(current)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="the src folder of the code to compare with")
    args = parser.parse_args()
    mail = messages(args.readers, args.size)
    import digest.delivery
    import digest.delivery.esp_targets

    runs = {
        f"{k} now": v for k, v in builders(digest.delivery, digest.delivery.esp_targets).items()
    }
    if args.before is not None:
        runs |= {f"{k} before": v for k, v in older(args.before).items()}
    seen: dict[str, list[float]] = {label: [] for label in sorted(runs)}
    for _ in range(args.rounds):
        for label, times in seen.items():
            build = runs[label]
            start = time.process_time()
            for rcpt, data in mail:
                build(rcpt, data)
            times.append((time.process_time() - start) / len(mail) * 1e6)
    print(f"{len(mail[0][1]):,}-byte messages, {args.readers} readers, {args.rounds} rounds")
    for label, times in seen.items():
        print(f"{label:16} median {statistics.median(times):6.1f} us, lowest {min(times):6.1f} us")


if __name__ == "__main__":
    main()
