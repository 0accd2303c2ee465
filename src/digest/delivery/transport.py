"""The transport interface: hand one message to a mail system and say what it answered.

The worker only sees this protocol; ``smtp.py`` (a pool of SMTP connections), ``files.py``
(one ``.eml`` file per message) and the email services' APIs (``ses.py``, ``postmark.py``,
``mailgun.py``) implement it, and ``running.transport_from_settings`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from digest.delivery.replies import Classified, Stage, classify


@dataclass(frozen=True, slots=True)
class Result:
    """The server's last word on one message: its code (None if the connection was lost
    before a reply), its text, and the stage of the dialogue it came at."""

    code: int | None
    message: str
    stage: Stage
    # The service asked for fewer requests (HTTP 429): the worker slows down, the mail waits.
    throttled: bool = False

    @property
    def reply(self) -> str:
        """The reply as one line, as kept in ``deliveries.last_reply``."""
        text = " ".join(self.message.split())
        prefix = f"{self.code} " if self.code is not None else ""
        return f"{prefix}{text}".strip() or f"no reply ({self.stage.value})"

    def classify(self) -> Classified:
        """What this result means for the delivery (see ``replies.classify``)."""
        return classify(self.code, self.message, self.stage)


class Transport(Protocol):
    """Something that takes a message for one recipient."""

    async def send(self, envelope_from: str, rcpt: str, data: bytes) -> Result:
        """Hand over one message; never raises for a refusal or a lost connection."""
        ...

    async def close(self) -> None:
        """Close every connection (QUIT politely where possible)."""
        ...
