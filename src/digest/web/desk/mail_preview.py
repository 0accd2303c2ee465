"""Mail shown and test-sent from the desk: a message's parts, its HTML served for a sandboxed
frame, and the limit on test copies.

Why a frame at its own URL rather than ``srcdoc``: mail HTML carries its styles inline (the
composer inlines its CSS for mail clients), and a ``srcdoc`` document inherits the desk's CSP,
which forbids inline styles, so it would look nothing like what a reader gets. Served at its
own URL it gets its own policy: inline styles and images allowed, no script, no form, no
plugin, sandboxed (the CSP ``sandbox`` directive, as the frame's ``sandbox`` attribute): an
opaque origin that cannot reach the desk's cookies or pages, framable by the desk alone.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from digest.web.desk.guard import EditorPost
from digest.web.ratelimit import Limiter, limiter_for

#: A mail preview's own headers: what a mail client allows, and nothing of the desk's.
PREVIEW_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
#: Test copies one desk account may send per hour: each is real mail through the transport.
TEST_SENDS_PER_HOUR = 10


@dataclass(frozen=True)
class Parts:
    """What a mail client shows of a message."""

    subject: str
    text: str
    html: str


def parts_of(raw: bytes) -> Parts:
    """The subject, text part and HTML part of an assembled message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    found = {}
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))  # type: ignore[attr-defined]
        found[kind] = str(part.get_content()) if part is not None else ""
    return Parts(str(message.get("Subject", "")), found["plain"], found["html"])


def html_response(raw: bytes) -> HTMLResponse:
    """The message's HTML part, for the desk's preview frame, under its own headers."""
    return HTMLResponse(parts_of(raw).html, headers=PREVIEW_HEADERS)


def _limiter(request: Request) -> Limiter:
    state = request.app.state
    if not hasattr(state, "desk_test_sends"):
        state.desk_test_sends = limiter_for(
            state.db, TEST_SENDS_PER_HOUR, 3600, name="desk-test-send"
        )
    return state.desk_test_sends  # type: ignore[no-any-return]


async def _test_send_refused(request: Request, desk: EditorPost) -> str | None:
    """Count one test copy for this account: None when allowed, else why not."""
    wait = await _limiter(request).check(f"user:{desk.user.id}")
    if wait is None:
        return None
    minutes = max(1, (wait + 59) // 60)
    return (
        f"You have sent {TEST_SENDS_PER_HOUR} test copies this hour; "
        f"try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


#: A test-send route's allowance: None, or the sentence saying why no copy may go now.
TestSendRefusal = Annotated[str | None, Depends(_test_send_refused)]
