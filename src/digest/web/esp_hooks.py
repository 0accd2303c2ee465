"""``POST /esp/ses``, ``/esp/postmark``, ``/esp/mailgun``: the email services' bounce and
complaint webhooks.

Only the service ``DIGEST_SMTP_URL`` names answers, and only with its ``webhook_secret`` set
(404 otherwise). SES (through SNS) and Postmark sign in with the HTTP Basic credentials written
in the webhook URL given to them (``https://digest:SECRET@news.example.com/esp/postmark``);
Mailgun signs each post with its webhook signing key. Every SES post must also carry a valid SNS
signature (403 otherwise), and with ``sns_topic`` set be for that topic. The use case is
``delivery.esp_webhooks.receive_esp_post``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from digest.delivery.esp_webhooks import MAX_POST_BYTES, receive_esp_post
from digest.errors import SignatureRefused, WebhookRefused
from digest.web.deps import DatabaseDep, SettingsDep

router = APIRouter(tags=["webhooks"])
_basic = HTTPBasic(auto_error=False, description="the webhook_secret of DIGEST_SMTP_URL")


@router.post("/esp/{service}", summary="An email service's bounce or complaint events")
async def esp_events(
    service: Literal["ses", "postmark", "mailgun"],
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> JSONResponse:
    """Record the bounces and complaints in one post; 200 also for events digest ignores."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_POST_BYTES:
            raise HTTPException(413, f"a webhook post holds at most {MAX_POST_BYTES} bytes")
    password = credentials.password if credentials is not None else None
    try:
        answer = await run_in_threadpool(
            receive_esp_post,
            db,
            settings,
            service,
            raw,
            password=password,
            sns=request.app.state.sns_verifier,
        )
    except SignatureRefused as exc:
        raise HTTPException(403, str(exc)) from None
    except WebhookRefused as exc:
        # The challenge makes SNS send the credentials of the URL it was given.
        raise HTTPException(
            401, str(exc), headers={"WWW-Authenticate": 'Basic realm="digest"'}
        ) from None
    return JSONResponse(answer.as_dict())
