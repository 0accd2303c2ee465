"""The desk's Settings page (every setting, secrets never shown, the deliverability check on
an owner's button) and its Audit log (newest first, keyset pages, filtered by action)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from digest import audit
from digest.audit import Actor
from digest.config import Settings
from digest.db import Database
from tests.support.desk import desk_client
from tests.support.dns_server import DnsServer, dns_server  # noqa: F401
from tests.support.web import make_app

SECRETS = {
    "secret_key": "sk-Z1nc-never-shown-0123456789-abcdefghij",
    "admin_token": "adm-Qu4rtz-never-shown-0123456789",
    "metrics_token": "met-Ob5idian-never-shown-0123456789",
    "smtp_url": "smtp://mailer:pw-Sh4le-never-shown@127.0.0.1:2525",
}


@asynccontextmanager
async def signed_in(
    settings: Settings, db: Database, role: str, **state: object
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in with ``role`` (and its CSRF token), closed afterwards."""
    app = make_app(settings, db)
    for key, value in state.items():
        setattr(app.state, key, value)
    http, csrf = await desk_client(app, db, role)
    try:
        yield http, csrf
    finally:
        await http.aclose()


async def test_settings_show_every_setting_and_never_a_secret(make_settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url, **SECRETS)
    async with signed_in(settings, db, "viewer") as (http, _):
        page = await http.get("/desk/settings")
    assert page.status_code == 200
    for secret in ("Z1nc", "Qu4rtz", "Ob5idian", "Sh4le"):
        assert secret not in page.text
    row = re.search(r'<tr id="setting-DIGEST_SMTP_URL">(.*?)</tr>', page.text, re.DOTALL)
    assert row and "smtp://mailer:***@127.0.0.1:2525" in row.group(1)
    key = re.search(r'<tr id="setting-DIGEST_SECRET_KEY">(.*?)</tr>', page.text, re.DOTALL)
    assert key and "***" in key.group(1)
    for name in ("DIGEST_BASE_URL", "DIGEST_DESK_IDLE_MINUTES", "DIGEST_ADMIN_TOKEN"):
        assert f'id="setting-{name}"' in page.text
    # A viewer sees no button: only an owner may run the check.
    assert "Run the check now" not in page.text


async def test_the_check_is_for_owners_and_only_on_post(
    settings: Settings,
    db: Database,
    dns_server: DnsServer,  # noqa: F811
) -> None:
    async with signed_in(settings, db, "editor") as (http, csrf):
        refused = await http.post("/desk/settings/check", data={"csrf_token": csrf})
        assert refused.status_code == 403
    async with signed_in(settings, db, "owner", check_resolver=dns_server.address) as (http, csrf):
        page = await http.get("/desk/settings")
        assert "Run the check now" in page.text and 'id="findings"' not in page.text
        assert (await http.post("/desk/settings/check", data={})).status_code == 403
        ran = await http.post("/desk/settings/check", data={"csrf_token": csrf})
        assert ran.status_code == 200
        findings = re.search(r'<table class="stack" id="findings">(.*?)</table>', ran.text, re.S)
        assert findings, ran.text
        # The loopback DNS server knows nothing of the sender's domain: SPF fails, with its fix.
        spf = re.search(
            r"<tr>(?:(?!</tr>).)*?✗ fail(?:(?!</tr>).)*?SPF(?:(?!</tr>).)*</tr>",
            findings.group(1),
            re.S,
        )
        assert spf, findings.group(1)
        assert re.search(r'data-label="Fix">[^<]+</td>', spf.group(0))
        assert "Some checks failed" in ran.text
        # Clicked again within the minute: the same check shown, not another round of lookups.
        stamp = re.search(r"Checked at ([^;]+);", ran.text)
        again = await http.post("/desk/settings/check", data={"csrf_token": csrf})
        assert stamp and f"Checked at {stamp.group(1)};" in again.text


async def test_audit_log_newest_first_in_pages_and_by_action(
    settings: Settings, db: Database
) -> None:
    with db.transaction() as s:
        for i in range(55):
            audit.record(
                s,
                Actor("api", "admin token", "198.51.100.4"),
                "newsletter.edit",
                f"newsletter:{i}",
                before={"name": f"Old {i}"},
                after={"name": f"New {i}"},
            )
    async with signed_in(settings, db, "viewer") as (http, _):
        first = await http.get("/desk/audit")
        assert first.status_code == 200
        ids = [int(i) for i in re.findall(r'<tr id="entry-(\d+)">', first.text)]
        assert len(ids) == 50 and ids == sorted(ids, reverse=True)
        rows = re.findall(r'<tr id="entry-\d+">(.*?)</tr>', first.text, re.S)
        # The newest: the viewer's account made, then their sign-in; the API's edits before.
        assert ["user.login" in rows[0], "user.add" in rows[1]] == [True, True]
        edit = re.search(
            r'<tr id="entry-\d+">((?:(?!</tr>).)*newsletter:54<.*?)</tr>', first.text, re.S
        )
        assert edit is not None and rows[2] == edit.group(1)
        for shown in ("api", "admin token", "198.51.100.4", "newsletter:54", "Old 54 → New 54"):
            assert shown in edit.group(1)
        older = re.search(r'<a href="([^"]+)" rel="next">', first.text)
        assert older, "no link to older entries"
        second = await http.get(older.group(1).replace("&amp;", "&"))
        rest = [int(i) for i in re.findall(r'<tr id="entry-(\d+)">', second.text)]
        assert rest == sorted(rest, reverse=True) and max(rest) < min(ids)
        assert len(ids) + len(rest) == 57
        only = await http.get("/desk/audit", params={"action": "user.add"})
        assert len(re.findall(r'<tr id="entry-', only.text)) == 1
        none = await http.get("/desk/audit", params={"action": "no.such"})
        assert "No entries for this action." in none.text
        bad = await http.get("/desk/audit", params={"before": "x'1"})
        assert bad.status_code == 400
