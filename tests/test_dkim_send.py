"""Signing on, end to end: what the SMTP server receives from the worker (digests and
confirmation mails) and from ``digest send --test`` carries signatures that dkimpy verifies."""

from __future__ import annotations

from asyncio import to_thread
from pathlib import Path

import pytest

from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from tests.support.cli import run
from tests.support.dkim import DOMAIN, Keys, dkim_keys, signatures, verify_all  # noqa: F401
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.smtp_server import SmtpServer
from tests.support.web import client, make_app
from tests.test_cli_send import env, noon  # noqa: F401  (the same store, posts and clock)


def signing(make_settings, db: Database, server: SmtpServer, keys: Keys, **kw: bool) -> Settings:  # type: ignore[no-untyped-def]
    """Settings that send through ``server`` and sign with ``keys``."""
    return make_settings(  # type: ignore[no-any-return]
        database_url=db.url,
        smtp_url=server.url,
        DIGEST_FROM=f"The Daily Brief <news@{DOMAIN}>",
        **keys.settings(**kw),
    )


def test_the_worker_sends_every_digest_signed_twice_and_both_verify(
    db: Database,
    make_settings,  # type: ignore[no-untyped-def]
    smtp_server: SmtpServer,
    dkim_keys: Keys,  # noqa: F811
) -> None:
    settings = signing(make_settings, db, smtp_server, dkim_keys, ed25519=True)
    add_subscribers(db, 30)
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == 30
    assert drain(settings, db).sent == 30
    received = smtp_server.handler.received  # type: ignore[attr-defined]
    assert len(received) == 30
    for message in received:
        assert verify_all(message.data, dkim_keys.dns) == [True, True], message.data[:2000]
    # Each reader's message is signed for itself: personal headers, personal body hash.
    assert len({signatures(m.data)[0][b"bh"] for m in received}) == 30


async def test_a_confirmation_mail_is_sent_signed(
    db: Database,
    make_settings,  # type: ignore[no-untyped-def]
    smtp_server: SmtpServer,
    dkim_keys: Keys,  # noqa: F811
) -> None:
    settings = signing(make_settings, db, smtp_server, dkim_keys)
    async with client(make_app(settings, db)) as http:
        answer = await http.post("/subscribe", data={"email": "zoë@example.org", "name": "Zoë"})
    assert answer.status_code == 200
    # ``drain`` runs its own event loop, as ``digest send`` does: off this test's loop.
    assert (await to_thread(drain, settings, db)).sent == 1
    (message,) = smtp_server.handler.received  # type: ignore[attr-defined]
    assert b"Confirm" in message.data
    assert verify_all(message.data, dkim_keys.dns) == [True]


def test_digest_send_and_a_test_copy_go_out_signed(
    env: Path,  # noqa: F811
    noon: None,  # noqa: F811
    smtp_server: SmtpServer,
    dkim_keys: Keys,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_URL", smtp_server.url)
    for name, value in dkim_keys.env().items():
        monkeypatch.setenv(name, value)
    r = run(capsys, "send", "--test", "editor@brief.example")
    assert r.code == 0, r
    r = run(capsys, "send")
    assert r.code == 0, r
    received = smtp_server.handler.received  # type: ignore[attr-defined]
    assert received[0].rcpt_tos == ("editor@brief.example",)  # the test copy, first
    assert sorted(m.rcpt_tos[0] for m in received[1:]) == ["ann@example.com", "bob@example.com"]
    for message in received:
        assert verify_all(message.data, dkim_keys.dns) == [True]
