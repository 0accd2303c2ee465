"""Helpers for the web tests: an app over a real store and an in-process HTTP client."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from sqlmodel import col, select

from digest.config import Settings
from digest.db import Database
from digest.models import Body, Delivery
from digest.states import DeliveryKind, DeliveryStatus
from digest.web.app import create_app

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}
CONFIRM_LINK = re.compile(r"https?://[^\s\"<>]+/confirm/[A-Za-z0-9_.-]+")


def client(app: FastAPI, ip: str = "203.0.113.7") -> httpx.AsyncClient:
    """An HTTP client talking to ``app`` in-process, as the client at ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def make_app(settings: Settings, db: Database) -> FastAPI:
    """The app as ``digest serve`` builds it."""
    return create_app(settings, db)


def path_of(url: str) -> str:
    """The path of an absolute link from a mail, to request from the in-process client."""
    return urlsplit(url).path


def confirm_mails(db: Database, email: str) -> list[tuple[Delivery, Body]]:
    """The confirmation mails queued for ``email``, oldest first."""
    with db.transaction() as session:
        rows = session.exec(
            select(Delivery, Body)
            .join(Body, col(Body.id) == col(Delivery.body_id))
            .where(
                Delivery.to_email == email,
                Delivery.kind == DeliveryKind.CONFIRM.value,
                # A request that gets no mail leaves a skipped row (the same work as one that
                # does, see signup.py): it was never queued.
                Delivery.status != DeliveryStatus.SKIPPED.value,
            )
            .order_by(col(Delivery.id))
        ).all()
        return [(d, b) for d, b in rows]


def confirm_link(body: Body) -> str:
    """The confirmation link in a queued mail's text."""
    found = CONFIRM_LINK.search(body.text)
    assert found, body.text
    assert found.group(0) in body.html
    return found.group(0)
