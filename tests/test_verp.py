"""VERP: each message's envelope sender names its delivery, and a bounce mailed back to it finds
that delivery without a Message-ID; a forged or altered token finds nothing."""

from __future__ import annotations

import asyncio
import os
import re
import string
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import assume, given
from hypothesis import strategies as st

from digest.config import Settings
from digest.db import Database
from digest.delivery.dsn import Kind, parse_report
from digest.mail.verp import claimed_token, delivery_of, token_for, verp_address
from digest.web.app import create_app
from tests.support.bounces import D, complaint, dsn, sent_edition, status_of, verp_dsn
from tests.support.smtp_server import SmtpServer

KEY = b"test-secret-key-0123456789-abcdefghijklmnop"
ids = st.integers(min_value=1, max_value=2**63 - 1)

# -- the token -----------------------------------------------------------------------------------


@given(ids)
def test_a_token_names_its_delivery_in_a_short_plain_local_part(delivery_id: int) -> None:
    token = token_for(delivery_id, KEY)
    assert re.fullmatch(r"[a-z0-9]{17,29}", token)
    assert delivery_of(token, KEY) == delivery_id
    # An MTA that folds the local part's case changes nothing.
    assert delivery_of(token.upper(), KEY) == delivery_id
    address = verp_address("bounces@news.example", delivery_id, KEY)
    assert address == f"bounces+{token}@news.example"
    assert claimed_token(address) == token


@given(ids, st.data())
def test_any_single_character_changed_is_refused(delivery_id: int, data: st.DataObject) -> None:
    token = token_for(delivery_id, KEY)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    other = data.draw(st.characters(codec="utf-8"))
    assume(other.lower() != token[at])
    altered = token[:at] + other + token[at + 1 :]
    assert delivery_of(altered, KEY) is None


@given(ids, st.data())
def test_a_cut_or_lengthened_token_is_refused(delivery_id: int, data: st.DataObject) -> None:
    token = token_for(delivery_id, KEY)
    start = data.draw(st.integers(min_value=0, max_value=len(token)))
    end = data.draw(st.integers(min_value=start, max_value=len(token)))
    assume((start, end) != (0, len(token)))
    assert delivery_of(token[start:end], KEY) is None
    extra = data.draw(st.sampled_from(string.ascii_lowercase + string.digits))
    assert delivery_of(extra + token, KEY) is None
    assert delivery_of(token + extra, KEY) is None


@given(ids, ids)
def test_tokens_differ_per_delivery_and_need_the_key(first: int, second: int) -> None:
    assume(first != second)
    assert token_for(first, KEY) != token_for(second, KEY)
    assert delivery_of(token_for(first, KEY), b"another key of forty characters, or so..") is None


def test_a_report_keeps_every_verp_token_it_came_back_to() -> None:
    back = verp_address("bounces@news.example", 7, KEY)
    (report,) = parse_report(verp_dsn("gone@example.com", back))
    assert report.message_id is None
    assert report.verp_tokens == (token_for(7, KEY),)
    # Only the MTA's Delivered-To names it: that is enough.
    plain = dsn("gone@example.com", "<e1.2@news.example>").replace(
        b"Subject:", f"Delivered-To: {back}\nSubject:".encode(), 1
    )
    assert parse_report(plain)[0].verp_tokens == (token_for(7, KEY),)
    # A feedback-loop complaint quotes the original's Return-Path, set at its final delivery.
    arf = complaint("ann@example.com", "<e1.1@news.example>").replace(
        b"Message-ID: <e1.1@news.example>\n", f"Return-Path: <{back}>\n".encode()
    )
    (report,) = parse_report(arf)
    assert (report.kind, report.message_id) == (Kind.COMPLAINT, None)
    assert report.verp_tokens == (token_for(7, KEY),)
    # A plain address, or an extension that is no token's shape, claims nothing.
    assert parse_report(dsn("gone@example.com", "<e1.2@news.example>"))[0].verp_tokens == ()
    assert claimed_token("ann+news@example.com") is None


# -- the envelope --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("more", "base"),
    [
        ({}, None),
        ({"verp": True}, "bounces@news.example"),
        ({"verp": True, "return_path": "digest-bounces@mx.news.example"}, None),
    ],
    ids=["off", "on", "on-with-return-path"],
)
def test_the_envelope_sender_names_each_delivery_with_verp_on(
    db: Database,
    make_settings: Callable[..., Any],
    smtp_server: SmtpServer,
    more: dict[str, Any],
    base: str | None,
) -> None:
    settings, _ = sent_edition(
        db, make_settings, smtp_server, from_="The Daily Brief <news@news.example>", **more
    )
    senders = {r.rcpt_tos[0]: r.mail_from for r in smtp_server.handler.received}
    if not settings.verp:
        assert set(senders.values()) == {"news@news.example"}
        return
    local, domain = (base or more["return_path"]).split("@")
    assert len(set(senders.values())) == len(senders) == 3
    for rcpt, sender in senders.items():
        match = re.fullmatch(rf"{local}\+([a-z0-9]{{17,29}})@{re.escape(domain)}", sender)
        assert match, sender
        assert delivery_of(match.group(1), settings.secret) == _delivery_id(db, rcpt)


# -- bounces that come back to it -----------------------------------------------------------------

DIGEST = (sys.executable, "-c", "from digest.cli import main; main()")


def _delivery_id(db: Database, email: str) -> int:
    with db.transaction() as session:
        return session.execute(sa.select(D.c.id).where(D.c.to_email == email)).scalar_one()


def _verp_edition(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer, **more: Any
) -> tuple[Settings, dict[str, str]]:
    """An edition sent with VERP to p0..p2@example.org, and the envelope sender of each."""
    settings, _ = sent_edition(db, make_settings, smtp_server, verp=True, **more)
    return settings, {r.rcpt_tos[0]: r.mail_from for r in smtp_server.handler.received}


def _forged(address: str) -> str:
    """``address`` with the last character of its token changed."""
    local, domain = address.split("@")
    return f"{local[:-1]}{'b' if local[-1] == 'a' else 'a'}@{domain}"


def _pipe(mail: bytes) -> str:
    """``digest bounces import -`` as the MTA runs it, the mail on its stdin; its output."""
    done = subprocess.run(
        [*DIGEST, "bounces", "import", "-"],
        input=mail,
        capture_output=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_the_pipe_maps_a_report_without_message_id_by_its_verp_address(
    cli_env: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    _settings, back = _verp_edition(cli_env, make_settings, smtp_server, secret_key="k" * 40)
    report = verp_dsn("p0@example.org", back["p0@example.org"])
    out = _pipe(report)
    assert "1 hard bounce(s)" in out and "1 subscriber(s) stopped, 0 not ours" in out
    assert status_of(cli_env, "p0@example.org") == ("bounced", "bounced")
    assert status_of(cli_env, "p1@example.org") == ("active", "sent")
    # Piped twice (an MTA retrying): nothing more changes.
    assert "0 subscriber(s) stopped, 0 not ours" in _pipe(report)
    # The same report mailed back to p1's address with one character of its token changed.
    out = _pipe(verp_dsn("p1@example.org", _forged(back["p1@example.org"])))
    assert "0 subscriber(s) stopped, 1 not ours" in out
    assert status_of(cli_env, "p1@example.org") == ("active", "sent")


TOKEN = "admin-token-0123456789abcdef"
HEADERS = {"authorization": f"Bearer {TOKEN}", "content-type": "message/rfc822"}


async def test_the_api_maps_by_verp_address_and_refuses_forged_or_mismatched_tokens(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    # drain runs an event loop of its own, so not on this test's.
    _settings, back = await asyncio.to_thread(_verp_edition, db, make_settings, smtp_server)
    message_ids = {r.rcpt_tos[0]: r.message_id for r in smtp_server.handler.received}
    p0, p1, p2 = (f"p{i}@example.org" for i in range(3))
    forged_with_message_id = dsn(p1, message_ids[p1]).replace(
        b"\nTo: digest@news.example\n", f"\nTo: {_forged(back[p1])}\n".encode()
    )
    mails = [
        verp_dsn(p0, back[p0], status="5.2.2"),  # mailbox full: the delivery only
        verp_dsn(p1, _forged(back[p1])),  # forged: nothing
        forged_with_message_id,  # a forged token spoils a genuine Message-ID too
        verp_dsn(p2, back[p1]),  # p1's genuine token naming p2: not p1's delivery's address
        dsn(p2, message_ids[p2]),  # no token: the Message-ID path, as without VERP
    ]
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        answers = [
            (await http.post("/api/bounces/report", content=mail, headers=HEADERS)).json()
            for mail in mails
        ]
    assert [(a["soft"], a["hard"], a["unmatched"], a["stopped"]) for a in answers] == [
        (1, 0, 0, 0),
        (0, 1, 1, 0),
        (0, 1, 1, 0),
        (0, 1, 1, 0),
        (0, 1, 0, 1),
    ]
    assert status_of(db, p0) == ("active", "bounced")
    assert status_of(db, p1) == ("active", "sent")
    assert status_of(db, p2) == ("bounced", "bounced")
