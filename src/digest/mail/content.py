"""What a mail says: its subject, plain-text part and HTML part, as one value.

Rendering makes it, the outbox stores it (``bodies``), and the worker assembles it into a MIME
message; it is the one type that carries the three together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MailContent:
    """A subject line, a plain-text body and an HTML body (personal parts still placeholders
    where the mail is shared)."""

    subject: str
    text: str
    html: str
    # The tracked variant (``compose/mail_links.py``): the same parts with outside links
    # through ``/r/`` and a ``%%TRACK%%`` placeholder for each copy; None when not tracked.
    tracked_text: str | None = None
    tracked_html: str | None = None

    @property
    def tracked(self) -> bool:
        """Whether the mail has a tracked variant."""
        return self.tracked_text is not None and self.tracked_html is not None
