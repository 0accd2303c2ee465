"""Rendering pages and mail text from the Jinja2 templates, the operator's folder first.

Templates live in the repository's ``templates/`` folder (pages under ``templates/web/``);
a file of the same relative name in ``DIGEST_TEMPLATES_DIR`` wins, file by file.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from digest.compose.templates import make_environment
from digest.config import Settings

#: Every page says the same about scripts and framing; tokens sit in URLs, so no referrer.
#: Scripts only from this origin's own files (``/assets/``), never inline ones.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
        "img-src 'self' data: https:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

CONSENT_TEXT = (
    "By subscribing you agree that we email you the digest you chose and keep a record of "
    "this consent (time, address and form). Every email has a one-click unsubscribe link."
)


def template_environment(settings: Settings) -> Environment:
    """The Jinja2 environment of the mail templates, shared: the operator's folder first."""
    return make_environment(settings.templates_dir)


class Pages:
    """Renders ``templates/web/*.html`` with what every page shares (site name, consent)."""

    def __init__(self, settings: Settings, env: Environment) -> None:
        self.settings = settings
        self.env = env

    def render(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        """The page ``web/<name>.html`` as a response."""
        return HTMLResponse(self.html(name, **context), status_code=status)

    def html(self, name: str, **context: Any) -> str:
        """The page ``web/<name>.html`` as text."""
        base = {
            "site_name": self.settings.site_name,
            "consent_text": CONSENT_TEXT,
            "consent_version": self.settings.consent_wording,
        }
        return self.env.get_template(f"web/{name}.html").render({**base, **context})


def wants_json(request: Request) -> bool:
    """Whether the client reads JSON: it sent JSON, or it asks for JSON rather than HTML."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return True
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept
