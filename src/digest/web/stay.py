"""List hygiene's answer: ``GET /stay/{token}`` shows a "Yes, keep sending" button, only the
``POST`` acts (``hygiene_answer.keep_sending``).

Link scanners open every link in a mail with a GET; if that kept a reader, hygiene would keep
everyone whose provider scans links, so the button is a form posting back here. The token is
scoped to one newsletter and never expires: a retired reader comes back by the same button.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from digest import hygiene_answer
from digest.links_auth import linked_subscriber
from digest.tokens import Purpose
from digest.web.deps import PagesDep, SessionDep, SettingsDep

router = APIRouter(tags=["stay"], include_in_schema=False)


@router.get("/stay/{token}")
def stay_page(token: str, session: SessionDep, settings: SettingsDep, pages: PagesDep) -> Response:
    """The page with the button; it changes nothing."""
    linked = linked_subscriber(session, settings, token, Purpose.STAY)
    if linked is None:
        return pages.render("gone")
    answer = hygiene_answer.answer_state(session, linked)
    return pages.render("stay", action=f"/stay/{token}", answer=answer)


@router.post("/stay/{token}")
def stay(token: str, session: SessionDep, settings: SettingsDep, pages: PagesDep) -> Response:
    """Keep sending: the reader stays (or, retired, comes back), in one transaction."""
    linked = linked_subscriber(session, settings, token, Purpose.STAY)
    if linked is None:
        return pages.render("gone")
    answer = hygiene_answer.keep_sending(session, linked)
    return pages.render("stayed", answer=answer)
