"""The desk's tables: accounts, their server-side sessions, the audit log, the desk's policy.

Sessions live in the store, not in a signed cookie, so that one can be revoked ("log out
everywhere", a removed account) and so that every web process sees the same ones. The cookie
holds only a random id; the table holds its SHA-256, so a copy of the store lets nobody in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from digest.clock import utcnow
from digest.columns import _ts


class DeskUser(SQLModel, table=True):
    """A person who may sign in to the desk, with one role: owner, editor or viewer."""

    __tablename__ = "desk_users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    role: str = Field(max_length=16)
    # Argon2id, PHC string form ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
    password_hash: str = Field(max_length=200)
    # Base32 TOTP secret once the person has enrolled a second factor; None: none.
    totp_secret: str | None = Field(default=None, max_length=64)
    # The last TOTP time step accepted, so one code is never accepted twice.
    totp_last_step: int | None = Field(default=None)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)
    password_changed_at: datetime = _ts(nullable=False, default=utcnow)
    last_login_at: datetime | None = _ts()


class DeskSession(SQLModel, table=True):
    """One signed-in browser: revocable, with idle and absolute expiry."""

    __tablename__ = "desk_sessions"

    id: int | None = Field(default=None, primary_key=True)
    # SHA-256 (hex) of the cookie's random value: the cookie itself is never stored.
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("desk_users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    # The CSRF token of every form this session is shown (compared in constant time).
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    last_seen_at: datetime = _ts(nullable=False, default=utcnow)
    expires_at: datetime = _ts(nullable=False)  # absolute: no activity extends it
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    # Set when a password is right but the second factor is still to be given.
    pending_totp: bool = Field(default=False)


class AuditEntry(SQLModel, table=True):
    """One change to the store made by a person or a program: who, when, from where, what."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False, index=True, default=utcnow)
    # "desk", "api" or "cli": the face the change came through.
    via: str = Field(max_length=8)
    # Who: a desk account's address, "admin token" for the API, the OS user for the CLI.
    actor: str = Field(max_length=320)
    # Where from: the client's IP for the desk and API, the host name for the CLI.
    source: str | None = Field(default=None, max_length=255)
    # What: a dotted verb ("subscriber.unsubscribe", "post.feature", "user.role"...).
    action: str = Field(max_length=64, index=True)
    # The thing changed: an address, "post 12", "announcement 3"... (erasures: a hash only).
    target: str = Field(default="", max_length=400)
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class DeskPolicy(SQLModel, table=True):
    """The desk's settings an owner changes from the desk: one row, id 1."""

    __tablename__ = "desk_policy"

    id: int | None = Field(default=None, primary_key=True)
    require_totp: bool = Field(default=False)
    updated_at: datetime = _ts(nullable=False, default=utcnow)
