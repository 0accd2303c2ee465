"""``GET /healthz``: 200 while the store answers, 503 when it does not."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from digest.errors import StoreUnavailable
from digest.web.deps import DatabaseDep
from digest.web.errors import public_message

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Whether the web app and its store are up")
async def healthz(db: DatabaseDep) -> JSONResponse:
    """``{"status": "ok"}``, or 503 when the database does not answer (why: in the log)."""
    try:
        await run_in_threadpool(db.ping)
    except StoreUnavailable as exc:
        message = public_message(exc, "GET /healthz")
        return JSONResponse({"status": "unavailable", "error": message}, status_code=503)
    return JSONResponse({"status": "ok"})
