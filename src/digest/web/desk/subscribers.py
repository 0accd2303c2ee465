"""``/desk/subscribers``: find people (by the start of an address or a name, with filters, a
keyset page at a time), a person's page, and what an editor may do to them there:
unsubscribe from a newsletter, change cadence and topics, erase.

The queries are the store's (``subscriber_search``, ``subscriber_record``), the changes
``subscriber_actions``'s, each audited in the request's one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from digest import newsletters, subscriber_actions, subscriber_record, subscriber_search
from digest.errors import DigestError, InvalidInput
from digest.states import Cadence, SubscriberStatus
from digest.subscriber_fields import parse_timezone
from digest.web.deps import SessionDep
from digest.web.desk.guard import Desk, EditorPost, Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

PAGE = 50
STATUSES = [s.value for s in SubscriberStatus]
CADENCES = [c.value for c in Cadence]
#: The notices a redirect may ask for (never text from the address bar).
NOTICES = {
    "erased": "The person was erased; only a hash of the address is kept, as suppressed.",
    "unsubscribed": "Unsubscribed from that newsletter; their queued mail of it is cancelled.",
    "saved": "Cadence and topics saved; they apply from the next edition.",
    "imported": "Import done.",
}


def _filters(
    session: SessionDep, typed: dict[str, str]
) -> tuple[subscriber_search.Filters, dict[str, str]]:
    """The filters the address bar asks for, and an error per field that is wrong."""
    errors: dict[str, str] = {}
    newsletter_id: int | None = None
    if typed["newsletter"]:
        known = {str(n.id): int(n.id or 0) for n in newsletters.listed(session, archived=True)}
        if typed["newsletter"] not in known:
            errors["newsletter"] = "Choose one of the newsletters listed."
        else:
            newsletter_id = known[typed["newsletter"]]
    if typed["status"] and typed["status"] not in STATUSES:
        errors["status"] = f"Status is one of {', '.join(STATUSES)}."
    if typed["cadence"] and typed["cadence"] not in CADENCES:
        errors["cadence"] = f"Cadence is one of {', '.join(CADENCES)}."
    if typed["zone"]:
        try:
            parse_timezone(typed["zone"], "UTC")
        except DigestError:
            errors["zone"] = "Not a time zone: use a name like Europe/Paris."
    if len(typed["q"]) > subscriber_search.MAX_QUERY:
        errors["q"] = "That is longer than any address."
    filters = subscriber_search.Filters(
        newsletter_id=newsletter_id,
        status=typed["status"] if "status" not in errors and typed["status"] else None,
        cadence=typed["cadence"] if "cadence" not in errors and typed["cadence"] else None,
        zone=typed["zone"] if "zone" not in errors and typed["zone"] else None,
    )
    return filters, errors


@router.get("/subscribers")
def search_page(
    request: Request,
    desk: Viewer,
    session: SessionDep,
    q: str = "",
    newsletter: str = "",
    status: str = "",
    cadence: str = "",
    zone: str = "",
    after: str | None = None,
    before: str | None = None,
    notice: str = "",
) -> Response:
    """The search form and a page of the people it finds, in address order."""
    typed = {
        "q": q.strip(),
        "newsletter": newsletter.strip(),
        "status": status.strip().lower(),
        "cadence": cadence.strip().lower(),
        "zone": zone.strip(),
    }
    filters, errors = _filters(session, typed)
    page = subscriber_search.Page()
    if not errors:
        page = subscriber_search.search(
            session,
            typed["q"],
            filters,
            after=(after or "")[:320] or None,
            before=(before or "")[:320] or None,
            limit=PAGE,
        )
    names = {int(n.id or 0): n.name for n in newsletters.listed(session, archived=True)}
    return desk_page(
        request,
        "subscribers",
        desk,
        status=422 if errors else 200,
        title="Subscribers",
        typed=typed,
        errors=errors,
        page=page,
        names=names,
        newsletters=newsletters.listed(session, archived=True),
        statuses=STATUSES,
        cadences=CADENCES,
        query={k: v for k, v in typed.items() if v},
        notice=NOTICES.get(notice, ""),
    )


def _person_page(
    request: Request,
    desk: Desk,
    session: SessionDep,
    subscriber_id: int,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    notice: str = "",
) -> Response:
    found = subscriber_record.record(session, subscriber_id)
    return desk_page(
        request,
        "subscriber",
        desk,
        status=422 if errors else 200,
        title=found.person.email,
        record=found,
        cadences=CADENCES,
        errors=errors or {},
        typed=typed or {},
        notice=notice,
    )


@router.get("/subscribers/{subscriber_id:int}")
def person_page(
    request: Request, desk: Viewer, session: SessionDep, subscriber_id: int, notice: str = ""
) -> Response:
    """Everything about one person: subscriptions, consent, mail and replies, bounces."""
    return _person_page(request, desk, session, subscriber_id, notice=NOTICES.get(notice, ""))


def _back(subscriber_id: int, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/desk/subscribers/{subscriber_id}?notice={notice}", status_code=303)


def _newsletter_id(value: str) -> int:
    found = subscriber_record.parse_id(value)
    if found is None:
        raise InvalidInput("Choose one of the person's newsletters.")
    return found


@router.post("/subscribers/{subscriber_id:int}/unsubscribe")
def unsubscribe(
    desk: EditorPost,
    session: SessionDep,
    subscriber_id: int,
    newsletter_id: Annotated[str, Form()] = "",
) -> Response:
    """Take the person off one newsletter."""
    person = subscriber_record.person(session, subscriber_id)
    subscriber_actions.unsubscribe(session, desk.actor, person, _newsletter_id(newsletter_id))
    return _back(subscriber_id, "unsubscribed")


@router.post("/subscribers/{subscriber_id:int}/preferences")
def preferences(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    subscriber_id: int,
    newsletter_id: Annotated[str, Form()] = "",
    cadence: Annotated[str, Form()] = "",
    topics: Annotated[str, Form()] = "",
) -> Response:
    """Change one subscription's cadence and topics; the form again with the error (422)."""
    person = subscriber_record.person(session, subscriber_id)
    nid = _newsletter_id(newsletter_id)
    wrong = subscriber_actions.preference_errors(cadence, topics)
    if wrong:
        typed: dict[str, Any] = {f"cadence-{nid}": cadence, f"topics-{nid}": topics}
        errors = {f"{field}-{nid}": message for field, message in wrong.items()}
        return _person_page(request, desk, session, subscriber_id, errors=errors, typed=typed)
    subscriber_actions.change_preferences(
        session, desk.actor, person, nid, cadence=cadence, topics=topics
    )
    return _back(subscriber_id, "saved")


@router.post("/subscribers/{subscriber_id:int}/erase")
def erase(
    request: Request,
    desk: EditorPost,
    session: SessionDep,
    subscriber_id: int,
    confirm_email: Annotated[str, Form()] = "",
) -> Response:
    """Erase the person once the address typed is theirs; the form again (422) otherwise."""
    person = subscriber_record.person(session, subscriber_id)
    try:
        subscriber_actions.erase(session, desk.actor, person, confirm_email)
    except InvalidInput as exc:
        return _person_page(
            request,
            desk,
            session,
            subscriber_id,
            errors={"confirm_email": str(exc)},
            typed={"confirm_email": confirm_email[:400]},
        )
    return RedirectResponse("/desk/subscribers?notice=erased", status_code=303)


@router.get("/subscribers/{rest:path}")
def no_such_page(desk: Viewer, rest: str) -> Response:
    """Any other address under /desk/subscribers/: the list for a bare slash, else not found
    (without this, Starlette would redirect ``/desk/subscribers//`` to the list, unguarded)."""
    if not rest.strip("/"):
        return RedirectResponse("/desk/subscribers", status_code=303)
    raise HTTPException(404, "There is no page at this address.")
