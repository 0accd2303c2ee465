"""Desk accounts in the store: add, list, change role or password, remove, authenticate.

Every change is written to the audit log in the same transaction, by the ``Actor`` the face
passes in. An address is kept as the person typed it, compared case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, delete, select

from digest import audit
from digest.addresses import normalize_email
from digest.audit import Actor
from digest.clock import utcnow
from digest.errors import InvalidEmail, LastOwner, UserExists, UserNotFound
from digest.models import DeskPolicy, DeskSession, DeskUser
from digest.passwords import check_password, hash_password, needs_rehash, verify_password
from digest.roles import Role, parse_role


def normal_address(email: str) -> str:
    """The address an account is filed under (validated, lower-cased)."""
    return normalize_email(email)


def find(session: Session, email: str) -> DeskUser | None:
    """The account of ``email``, or None (also for a malformed address)."""
    try:
        address = normal_address(email)
    except InvalidEmail:
        return None
    return session.exec(select(DeskUser).where(col(DeskUser.email) == address)).first()


def get(session: Session, email: str) -> DeskUser:
    """The account of ``email``, or UserNotFound."""
    user = find(session, email)
    if user is None:
        raise UserNotFound(f"no desk account for {email.strip()}")
    return user


def listed(session: Session) -> Sequence[DeskUser]:
    """Every account, by address."""
    return session.exec(select(DeskUser).order_by(col(DeskUser.email))).all()


def add(session: Session, actor: Actor, email: str, role: str, password: str) -> DeskUser:
    """A new account; UserExists if the address has one, WeakPassword for a poor password."""
    address = normal_address(email)
    chosen = parse_role(role)
    check_password(password, address)
    if find(session, address) is not None:
        raise UserExists(f"{address} has a desk account already")
    user = DeskUser(email=address, role=chosen.value, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.add", address, after={"role": chosen.value})
    return user


def set_role(session: Session, actor: Actor, email: str, role: str) -> DeskUser:
    """Give the account another role; LastOwner if it is the last owner losing that role."""
    owners = _lock_owners(session)
    user = get(session, email)
    chosen = parse_role(role)
    if user.role == chosen.value:
        return user
    if user.role == Role.OWNER and owners <= 1:
        raise LastOwner("the desk needs an owner: make another owner first")
    before = user.role
    user.role = chosen.value
    user.updated_at = utcnow()
    session.add(user)
    audit.record(
        session,
        actor,
        "user.role",
        user.email,
        before={"role": before},
        after={"role": chosen.value},
    )
    return user


def set_password(session: Session, actor: Actor, email: str, password: str) -> DeskUser:
    """A new password for the account; every session of the account ends."""
    user = get(session, email)
    check_password(password, user.email)
    user.password_hash = hash_password(password)
    user.password_changed_at = user.updated_at = utcnow()
    session.add(user)
    end_sessions(session, user.id)
    audit.record(session, actor, "user.password", user.email)
    return user


def remove(session: Session, actor: Actor, email: str) -> None:
    """Delete the account and its sessions; LastOwner if it is the last owner while other
    accounts remain (the CLI can always make a new owner, so the last account may go)."""
    owners = _lock_owners(session)
    user = get(session, email)
    if user.role == Role.OWNER and owners <= 1 and len(listed(session)) > 1:
        raise LastOwner("the desk needs an owner: make another owner first")
    end_sessions(session, user.id)
    session.delete(user)
    audit.record(session, actor, "user.remove", user.email, before={"role": user.role})


def reset_totp(session: Session, actor: Actor, email: str) -> DeskUser:
    """Remove the account's second factor (its owner lost it) and end its sessions: at the
    next sign-in it signs in with the password alone, or enrols anew if the desk requires a
    second factor."""
    user = get(session, email)
    before = user.totp_secret is not None
    user.totp_secret = None
    user.totp_last_step = None
    user.updated_at = utcnow()
    session.add(user)
    ended = end_sessions(session, user.id)
    audit.record(
        session,
        actor,
        "user.totp_reset",
        user.email,
        before={"totp": before},
        after={"totp": False, "sessions_ended": ended},
    )
    return user


def authenticate(session: Session, email: str, password: str, now: datetime) -> DeskUser | None:
    """The account if ``password`` is its password, else None, in the same time whether the
    address has an account or not. A hash made with weaker parameters is renewed."""
    user = find(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    session.add(user)
    return user


def end_sessions(session: Session, user_id: int | None) -> int:
    """End every session of the account ("log out everywhere"); how many there were."""
    result = session.exec(delete(DeskSession).where(col(DeskSession.user_id) == user_id))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


def policy(session: Session) -> DeskPolicy:
    """The desk's policy row (made on first use)."""
    row = session.get(DeskPolicy, 1)
    if row is None:
        row = DeskPolicy(id=1)
        session.add(row)
        session.flush()
    return row


def set_require_totp(session: Session, actor: Actor, on: bool) -> DeskPolicy:
    """Require (or stop requiring) a second factor of every account at sign-in."""
    row = policy(session)
    before = row.require_totp
    if before != on:
        row.require_totp = on
        row.updated_at = utcnow()
        session.add(row)
        audit.record(
            session,
            actor,
            "policy.require_totp",
            "desk",
            before={"require_totp": before},
            after={"require_totp": on},
        )
    return row


def _lock_owners(session: Session) -> int:
    """How many owners there are, their rows locked until the transaction ends: two owners
    demoting (or removing) each other at once on PostgreSQL would each count two owners and
    leave none; the second now waits, then counts again. (SQLite's transactions hold the
    write lock from their start, which serialises them already.)"""
    rows = session.exec(
        select(DeskUser)
        .where(col(DeskUser.role) == Role.OWNER)
        .with_for_update()
        .execution_options(populate_existing=True)  # the roles as they are now, not as loaded
    ).all()
    return len(rows)
