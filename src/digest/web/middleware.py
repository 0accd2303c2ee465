"""Two things every request passes through: the body size cap and the security headers.

Plain ASGI rather than ``BaseHTTPMiddleware``: it costs nothing per request and does not
buffer bodies.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.links import TOKEN_PATH_PREFIXES
from digest.web.desk.render import is_desk_path
from digest.web.errors import error_response
from digest.web.pages import SECURITY_HEADERS

MAX_BODY_BYTES = 16 * 1024
# The admin API's bounce routes take report mails (a DSN quotes the digest it is about) and
# event batches; only they get the larger cap, every other route keeps the small one.
MAX_API_BODY_BYTES = 1024 * 1024
_API_PREFIX = "/api/bounces"
#: The desk's routes that take more than a small form, each with its own cap (first match):
#: the import's upload (the file as large as ``subscribers_io.MAX_UPLOAD``, 20 MB, and room for
#: the form around it) and the announcement forms, whose body may be a long text.
DESK_BODY_CAPS: tuple[tuple[str, int], ...] = (
    ("/desk/subscribers/import", 20 * 1024 * 1024 + 64 * 1024),
    ("/desk/announcements", 256 * 1024),
)


def _too_large(path: str, cap: int) -> str:
    """Why a body was refused; on the desk, also how to get back what was typed."""
    said = f"the request body is over {cap // 1024} KB"
    if is_desk_path(path):
        return (
            f"What you sent is over {cap // 1024} KB, more than this form takes. Go back "
            "with your browser: what you typed is still in the form; shorten it and send again."
        )
    return said


class Guard:
    """Caps request bodies at ``max_body`` bytes (bounce routes: ``max_api_body``), answering
    413, and adds the security headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int = MAX_BODY_BYTES,
        max_api_body: int = MAX_API_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_api_body = max_api_body
        self._headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        seen = 0
        # Pages behind a token must not be kept by a shared cache or the browser's history.
        private = scope["path"].startswith(TOKEN_PATH_PREFIXES) or is_desk_path(scope["path"])
        cap = self._cap(scope["path"])

        async def limited_receive() -> Message:
            nonlocal seen
            # A body without a declared length is counted as it arrives. The error is raised
            # where the route reads the body; an HTTPException, because FastAPI turns any other
            # exception met while it parses a body into a vague 400.
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise HTTPException(413, _too_large(scope["path"], cap))
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self._headers if k not in present]
                if private and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        if declared is not None and declared > cap:
            # Refused before the route runs: a route whose body FastAPI parses itself would
            # turn an error raised while reading into a vague 400.
            too_large = _too_large(scope["path"], cap)
            await error_response(Request(scope), 413, too_large)(scope, receive, guarded_send)
            return
        await self.app(scope, limited_receive, guarded_send)

    def _cap(self, path: str) -> int:
        """The body cap of a request to ``path``."""
        if path.startswith(_API_PREFIX):
            return self.max_api_body
        for prefix, cap in DESK_BODY_CAPS:
            if path == prefix or path.startswith(prefix + "/"):
                return cap
        return self.max_body


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
