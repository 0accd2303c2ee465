"""Rendering desk pages: the shared layout's context (who is signed in, their CSRF token,
the navigation) and the headers every desk page carries.

Desk pages are stricter than the public ones: styles and scripts only from this origin's
files (no inline ones), no framing, and never kept by a cache or the browser's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from digest.roles import Role
from digest.web.pages import Pages

if TYPE_CHECKING:
    from digest.web.desk.guard import Desk

DESK_PREFIX = "/desk"
#: No inline style or script anywhere on the desk: what an injected tag could do is nothing.
DESK_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; "
        # Mail previews only: their HTML at its own desk URL, with its own sandboxing CSP.
        "frame-src 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

#: The desk's sections: (path, label, the role that sees it).
NAVIGATION: tuple[tuple[str, str, Role], ...] = (
    ("/desk/", "Today", Role.VIEWER),
    ("/desk/subscribers", "Subscribers", Role.VIEWER),
    ("/desk/posts", "Posts", Role.VIEWER),
    ("/desk/editions", "Editions", Role.VIEWER),
    ("/desk/announcements", "Announcements", Role.VIEWER),
    ("/desk/reports", "Reports", Role.VIEWER),  # engagement reports (issue 16)
    ("/desk/feeds", "Feeds", Role.VIEWER),
    ("/desk/settings", "Settings", Role.VIEWER),
    ("/desk/audit", "Audit log", Role.VIEWER),
    ("/desk/users", "Accounts", Role.OWNER),
)


def is_desk_path(path: str) -> bool:
    """Whether ``path`` is a desk page (its headers are the desk's)."""
    return path == DESK_PREFIX or path.startswith(DESK_PREFIX + "/")


def desk_page(
    request: Request,
    name: str,
    desk: Desk | None,
    *,
    status: int = 200,
    title: str,
    **context: Any,
) -> HTMLResponse:
    """The desk page ``templates/web/desk/<name>.html`` with the layout's context."""
    pages: Pages = request.app.state.pages
    path = request.url.path
    nav = [
        {"path": p, "label": label, "current": path == p or (p != "/desk/" and path.startswith(p))}
        for p, label, needed in NAVIGATION
        if desk is not None and desk.may(needed)
    ]
    html = pages.html(
        f"desk/{name}",
        title=title,
        desk=desk,
        user=desk.user if desk else None,
        role=desk.role.value if desk else None,
        csrf_token=desk.csrf if desk else context.pop("csrf_token", ""),
        nav=nav,
        may_edit=bool(desk and desk.may(Role.EDITOR)),
        is_owner=bool(desk and desk.may(Role.OWNER)),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=DESK_HEADERS)
