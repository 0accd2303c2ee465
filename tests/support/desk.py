"""Helpers for the desk's tests: accounts made as the CLI makes them, and a browser-like
client signed in through the real sign-in form (cookies kept, CSRF token read off pages)."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from digest import desk_accounts
from digest.audit import Actor
from digest.db import Database
from tests.support.web import client

PASSWORD = "a-long-desk-passphrase-42"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def make_user(db: Database, email: str, role: str, password: str = PASSWORD) -> None:
    """A desk account, made as ``digest users add`` makes it."""
    with db.transaction() as session:
        desk_accounts.add(session, Actor("cli", "test"), email, role, password)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the form, as a browser does; the answer to the form's POST."""
    form = await http.get("/desk/login")
    return await http.post(
        "/desk/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
    )


async def desk_client(
    app: FastAPI,
    db: Database,
    role: str = "editor",
    email: str | None = None,
    ip: str = "203.0.113.7",
) -> tuple[httpx.AsyncClient, str]:
    """A client signed in as a new account of ``role``, and the CSRF token of its session."""
    address = email or f"{role}@newsroom.example"
    make_user(db, address, role)
    http = client(app, ip)
    answer = await sign_in(http, address)
    assert answer.status_code == 303, answer.text
    page = await http.get("/desk/")
    return http, csrf_of(page.text)
