"""What one mail that came back to digest asks for: a bounce, a complaint, or an unsubscribe.

Three kinds of mail arrive at the addresses digest puts in its messages: delivery status
notifications at the envelope sender, feedback-loop complaints, and, when
``DIGEST_UNSUBSCRIBE_MAILTO`` is set, mails to the List-Unsubscribe ``mailto:``. Each digest
puts its reader's signed unsubscribe token in that mailto's subject (``mail/message.py``), so
an unsubscribe request is honoured for the reader the token names, never for whoever the From
line claims to be. Pure: bytes in, ``Report`` values out.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re

from digest.delivery.dsn import Kind, Report, parse_report
from digest.errors import NotAReport

# "unsubscribe <payload>.<mac>" anywhere in the subject ("Re: unsubscribe ..." included).
_UNSUBSCRIBE = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{4,120}\.[A-Za-z0-9_-]{8,60})\b", re.I)


def read_inbound(raw: bytes) -> list[Report]:
    """The reports in one inbound mail; NotAReport when it asks for nothing digest does."""
    try:
        return parse_report(raw)
    except NotAReport as not_a_report:
        token = unsubscribe_token(raw)
        if token is None:
            raise NotAReport(f"{not_a_report}, nor an unsubscribe request") from None
        return [Report(Kind.UNSUBSCRIBE, None, None, "unsubscribe", "", token=token)]


def unsubscribe_token(raw: bytes) -> str | None:
    """The token in the subject of a mail sent to the List-Unsubscribe mailto, if any."""
    try:
        # compat32 and a cut: the modern header parser is slow on long encoded-word runs.
        head = email.message_from_bytes(raw[:65536], policy=email.policy.compat32)
        words = email.header.decode_header(str(head.get("Subject", ""))[:1000])
        subject = "".join(
            w.decode(charset or "ascii", "replace") if isinstance(w, bytes) else w
            for w, charset in words
        )
    except Exception:
        # Mail from strangers: a header the parser cannot read is simply not a request.
        return None
    match = _UNSUBSCRIBE.search(" ".join(subject.split()))
    return match.group(1) if match else None
