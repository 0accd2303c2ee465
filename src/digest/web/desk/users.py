"""``/desk/users``: the owner's page of accounts: who may sign in, with what role and
whether they have a second factor; add, change role, remove, reset a lost second factor;
require a second factor of all.

Owners only (``Owner``/``OwnerPost``). The changes are digest.desk_accounts' functions, each
writing the audit log with the owner as actor; removing an account ends its sessions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from digest import desk_accounts
from digest.errors import DigestError, InvalidEmail, InvalidInput, UserExists, WeakPassword
from digest.roles import Role
from digest.web.deps import SessionDep
from digest.web.desk.guard import Desk, Owner, OwnerPost, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

NOTICES = {
    "added": "The account is made; tell its owner their password by a safe way.",
    "role": "The role is changed.",
    "removed": "The account is removed and its sessions have ended.",
    "totp-reset": "The second factor is removed and the account's sessions have ended.",
    "totp-on": "Every account now needs a second factor at sign-in.",
    "totp-off": "A second factor is now up to each account.",
}
ROLES = [r.value for r in Role]


def _page(
    request: Request,
    desk: Desk,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    return desk_page(
        request,
        "users",
        desk,
        status=status,
        title="Accounts",
        notice=NOTICES.get(notice, ""),
        accounts=desk_accounts.listed(desk.session),
        require_totp=desk_accounts.policy(desk.session).require_totp,
        roles=ROLES,
        errors=errors or {},
        typed=typed or {"email": "", "role": "editor"},
        error=error,
    )


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@router.get("/users")
def users(request: Request, desk: Owner, notice: str = "") -> Response:
    """Every account, and the forms to change them."""
    return _page(request, desk, notice=notice)


@router.post("/users")
def add_user(
    request: Request,
    desk: OwnerPost,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """A new account with an initial password."""
    typed = {"email": email, "role": role}
    try:
        desk_accounts.add(session, desk.actor, email, role, password)
    except (InvalidEmail, UserExists) as exc:
        return _page(request, desk, errors={"email": _sentence(exc)}, typed=typed, status=422)
    except WeakPassword as exc:
        return _page(request, desk, errors={"password": _sentence(exc)}, typed=typed, status=422)
    except InvalidInput as exc:
        return _page(request, desk, errors={"role": _sentence(exc)}, typed=typed, status=422)
    return RedirectResponse("/desk/users?notice=added", status_code=303)


@router.post("/users/role")
def change_role(
    request: Request,
    desk: OwnerPost,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Give an account another role (the last owner keeps theirs)."""
    try:
        desk_accounts.set_role(session, desk.actor, email, role)
    except DigestError as exc:
        return _page(request, desk, error=_sentence(exc), status=exc.http_status)
    return RedirectResponse("/desk/users?notice=role", status_code=303)


@router.post("/users/remove")
def remove_user(
    request: Request,
    desk: OwnerPost,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Remove an account; its sessions end."""
    try:
        desk_accounts.remove(session, desk.actor, email)
    except DigestError as exc:
        return _page(request, desk, error=_sentence(exc), status=exc.http_status)
    return RedirectResponse("/desk/users?notice=removed", status_code=303)


@router.post("/users/totp-reset")
def reset_totp(
    request: Request,
    desk: OwnerPost,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Remove an account's lost second factor; its sessions end."""
    try:
        desk_accounts.reset_totp(session, desk.actor, email)
    except DigestError as exc:
        return _page(request, desk, error=_sentence(exc), status=exc.http_status)
    return RedirectResponse("/desk/users?notice=totp-reset", status_code=303)


@router.post("/users/require-totp")
def require_totp(
    desk: OwnerPost,
    session: SessionDep,
    on: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Require a second factor of every account at sign-in, or stop requiring it."""
    wanted = on.strip().lower() in {"1", "true", "on", "yes"}
    desk_accounts.set_require_totp(session, desk.actor, wanted)
    return RedirectResponse(f"/desk/users?notice=totp-{'on' if wanted else 'off'}", 303)
