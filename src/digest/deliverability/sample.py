"""A sample digest for ``digest check``: what a new reader of every topic would get now, its
size (Gmail clips an HTML part over 102 KB), SpamAssassin's score when it is installed, and the
one-click unsubscribe headers (RFC 8058)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from digest.config import Settings
from digest.db import Database
from digest.deliverability import report as r
from digest.deliverability.report import Finding
from digest.previews import preview

#: Gmail shows "[Message clipped]" and hides the rest (the unsubscribe link too) past this.
GMAIL_CLIP_BYTES = 102 * 1024
#: SpamAssassin's own line for spam, and half of it, where some filters already act.
SPAM_FAIL = 5.0
SPAM_WARN = 2.5
_SCORE = re.compile(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", re.MULTILINE)


def sample_findings(
    db: Database, settings: Settings, now: datetime, *, spamassassin: bool = True
) -> list[Finding]:
    """Build the sample digest and check it; one skip when no post would go out."""
    sample = preview(db, settings, address=None, cadence=None, now=now)
    if sample.message is None:
        return [r.skip("sample digest", f"no digest to look at: {sample.reason}")]
    message = BytesParser(policy=policy.default).parsebytes(sample.message)
    if not isinstance(message, EmailMessage):
        return [r.fail("sample digest", "the message does not parse", "report this as a bug")]
    findings = [_size(message, len(sample.message)), _unsubscribe(message)]
    if spamassassin:
        findings.append(spam_score(sample.message))
    return findings


def _size(message: EmailMessage, total: int) -> Finding:
    part = message.get_body(("html",))
    html = part.get_content() if isinstance(part, EmailMessage) else ""
    size = len(html.encode("utf-8"))
    detail = f"HTML {size / 1024:.1f} KB, whole message {total / 1024:.1f} KB"
    if size > GMAIL_CLIP_BYTES:
        return r.fail(
            "sample size",
            f"{detail}: Gmail clips HTML over 102 KB, the unsubscribe link with it",
            "lower DIGEST_MAX_LATEST or DIGEST_MAX_FEATURED, or shorten the templates",
        )
    return r.ok("sample size", detail)


def _unsubscribe(message: EmailMessage) -> Finding:
    link = str(message.get("List-Unsubscribe", ""))
    post = str(message.get("List-Unsubscribe-Post", ""))
    if "<http" in link and post.strip() == "List-Unsubscribe=One-Click":
        return r.ok("one-click unsubscribe", "List-Unsubscribe and List-Unsubscribe-Post present")
    missing = [
        name
        for name, present in (
            ("List-Unsubscribe with a link", "<http" in link),
            ("List-Unsubscribe-Post: List-Unsubscribe=One-Click", bool(post)),
        )
        if not present
    ]
    return r.fail(
        "one-click unsubscribe",
        "missing: " + "; ".join(missing or ["a valid List-Unsubscribe-Post"]),
        "restore the shipped mail headers (a template override cannot remove them)",
    )


def spam_score(raw: bytes) -> Finding:
    """SpamAssassin's score of ``raw`` with local tests only (no network), or a skip."""
    binary = shutil.which("spamassassin")
    if binary is None:
        return r.skip("SpamAssassin", "not installed: no score")
    with tempfile.TemporaryDirectory() as home:
        try:
            out = subprocess.run(  # noqa: S603 - a fixed program with fixed arguments
                [binary, "-L", "-t"],
                input=raw,
                capture_output=True,
                timeout=120,
                env={**os.environ, "HOME": home},  # its user_prefs go to a scratch folder
                check=True,
            ).stdout.decode("utf-8", "replace")
        except (subprocess.SubprocessError, OSError) as exc:
            return r.skip("SpamAssassin", f"could not run it: {exc}")
    match = _SCORE.search(out)
    if match is None:
        return r.skip("SpamAssassin", "it gave no score")
    score = float(match.group(1))
    rules = _rules(out)
    detail = f"score {score:g}" + (f" ({rules})" if rules else "")
    fix = "look at the rules it names and change the templates or the posts' markup"
    if score >= SPAM_FAIL:
        return r.fail("SpamAssassin", f"{detail}: it calls this spam", fix)
    if score >= SPAM_WARN:
        return r.warn("SpamAssassin", detail, fix)
    return r.ok("SpamAssassin", detail)


def _rules(report: str) -> str:
    """The names of the rules that added points, from the report's table."""
    table = report[report.find("Content analysis details") :]
    found = re.findall(r"^\s*(\d+\.\d+)\s+([A-Z0-9_]+)", table, re.MULTILINE)
    return ", ".join(f"{name} {points}" for points, name in found if float(points) > 0)
