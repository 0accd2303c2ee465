"""The one place where errors become HTTP answers: a page for browsers, JSON for programs.

Domain errors carry their own status (``digest.errors``); request validation becomes 422 with
a sentence a person understands; anything unexpected becomes a plain 500 page, never a
traceback. Everything under ``/api/`` answers ``{"error": "..."}`` whatever the client's Accept
header: scripts rarely ask for JSON explicitly, and an HTML page is no use to them.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from digest.errors import (
    DigestError,
    InvalidToken,
    LinkNotFound,
    RateLimited,
    SignInRequired,
    StoreUnavailable,
)
from digest.logs import cut_tokens
from digest.web.desk.render import desk_page, is_desk_path
from digest.web.pages import Pages, wants_json

log = logging.getLogger(__name__)

#: Where the admin API is mounted; every answer under it, errors included, is JSON.
API_PREFIX = "/api"

_TITLES = {
    400: "This link does not work",
    404: "Page not found",
    405: "Not allowed here",
    409: "Not possible",
    413: "Too much data",
    415: "Unsupported format",
    422: "Please check the form",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
#: What a stranger is told when the store is down: the driver's own message names the
#: database's host, port and user, which are the operator's business (they are in the log).
STORE_DOWN = "The database is unavailable right now; please try again in a moment."
SERVER_FAULT = "Something went wrong on our side; please try again."
_TITLES_DESK = {401: "Sign-in failed", 403: "Not allowed"}
_HTTP_MESSAGES = {
    404: "There is no page at this address.",
    405: "This address does not accept that kind of request.",
}


def error_response(
    request: Request,
    status: int,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    token_error: bool = False,
    home: str | None = None,
) -> Response:
    """The answer to a failed request, in the form the client reads; ``home`` is where the
    page's one link goes (the start page when None)."""
    if _answers_json(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    if is_desk_path(request.url.path):
        title = _TITLES_DESK.get(status) or _TITLES.get(status, "Something went wrong")
        response = desk_page(request, "error", None, status=status, title=title, message=message)
        response.headers.update(headers or {})
        return response
    pages: Pages = request.app.state.pages
    response = pages.render(
        "error",
        status=status,
        title=_TITLES.get(status, "Something went wrong"),
        message=message,
        resubscribe=token_error,
        home=home,
    )
    response.headers.update(headers or {})
    return response


def _answers_json(request: Request) -> bool:
    path = request.url.path
    return path == API_PREFIX or path.startswith(API_PREFIX + "/") or wants_json(request)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "request"
        parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def public_message(exc: DigestError, where: str) -> str:
    """What the client is told of ``exc``; a server-side fault is logged with ``where`` and
    told only in general words, never with its details (hosts, users, file paths)."""
    if exc.http_status < 500:
        return str(exc)
    log.warning("%s on %s: %s", type(exc).__name__, where, exc)
    return STORE_DOWN if isinstance(exc, StoreUnavailable) else SERVER_FAULT


def _where(request: Request) -> str:
    # The path may carry a reader's token: cut here too, for an app run under another logger.
    return f"{request.method} {cut_tokens(request.url.path)}"


async def _digest_error(request: Request, exc: DigestError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(
        request,
        exc.http_status,
        public_message(exc, _where(request)),
        headers=headers,
        token_error=isinstance(exc, InvalidToken),
        # A stranger's tracked link: send them to the site, which is all they may have wanted.
        home=request.app.state.settings.base_url if isinstance(exc, LinkNotFound) else None,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return error_response(request, 422, _validation_message(exc))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    message = _HTTP_MESSAGES.get(exc.status_code) or str(exc.detail)
    return error_response(request, exc.status_code, message, headers=exc.headers)


async def _sign_in(request: Request, exc: SignInRequired) -> Response:
    if _answers_json(request):
        return JSONResponse({"error": "sign in to the desk first"}, status_code=401)
    return RedirectResponse("/desk/login?next=" + quote(exc.next_path, safe="/"), status_code=303)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client hung up while sending its body: nobody reads this answer, nothing to log.
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", _where(request))
    return error_response(request, 500, SERVER_FAULT)


def install(app: FastAPI) -> None:
    """Register every handler on the app."""
    # Starlette calls each handler only with its own class (or a subclass) of exception.
    handlers: dict[Any, Any] = {
        DigestError: _digest_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        ClientDisconnect: _client_gone,
        SignInRequired: _sign_in,
        Exception: _unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
