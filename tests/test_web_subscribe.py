"""POST /subscribe over HTTP on both stores: one answer for every address, the abuse limits."""

from __future__ import annotations

import asyncio
from email import policy
from email.parser import BytesParser

import pytest
from sqlmodel import func, select

from digest import subscribers, subscription_requests, subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.delivery.running import drain
from digest.errors import InvalidInput
from digest.models import Delivery, Subscriber
from digest.states import SubscriberStatus
from digest.subscriber_fields import Consent
from digest.web.writer import BatchWriter
from tests.support.smtp_server import RecordingHandler, start_server
from tests.support.web import HTML, client, confirm_link, confirm_mails, make_app


def _count(db: Database, model: type) -> int:
    with db.transaction() as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _seed_states(db: Database) -> None:
    """pending@, active@ and gone@ (unsubscribed) exist; new@ does not."""
    consent = Consent(at=utcnow(), source="test")
    with db.transaction() as session:
        subscription_requests.request_subscription(session, "pending@example.com", consent=consent)
        subscriptions.add(session, "active@example.com", confirmed=True)
        gone = subscriptions.add(session, "gone@example.com", confirmed=True)
        subscriptions.unsubscribe(session, gone)


async def test_page_is_the_stay_in_touch_box(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url, site_name="The Daily Brief")
    async with client(make_app(settings, db)) as http:
        page = await http.get("/")
    assert page.status_code == 200
    text = page.text
    assert "Stay in touch" in text and "The Daily Brief" in text
    assert "To be updated with all the latest news" in text
    for label in ('for="email"', 'for="name"', 'value="daily"', 'value="weekly"'):
        assert label in text
    # The one script fills the hidden timezone; the form needs none (test_web_timezone.py).
    assert text.count("<script") == 1 and '<script src="/assets/timezone.js"' in text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "'unsafe-inline'; img-src" in page.headers["content-security-policy"]  # styles only
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_same_answer_whatever_the_address(db: Database, settings) -> None:
    _seed_states(db)
    app = make_app(settings, db)
    answers = {}
    async with client(app) as http:
        for who in ("new", "pending", "active", "gone"):
            form = await http.post("/subscribe", data={"email": f"{who}@example.com"}, headers=HTML)
            api = await http.post("/subscribe", json={"email": f"{who}@example.com"})
            answers[who] = (form.status_code, form.text, api.status_code, api.text)
    assert len(set(answers.values())) == 1
    status, page, api_status, api_body = answers["new"]
    assert status == 200 and "Check your inbox" in page
    assert api_status == 202 and '"status":"pending"' in api_body
    # Mail went to the new, pending and unsubscribed addresses; the active one got nothing.
    sent = {who: len(confirm_mails(db, f"{who}@example.com")) for who in answers}
    assert sent == {"new": 2, "pending": 2, "active": 0, "gone": 2}
    with db.transaction() as session:
        assert subscribers.reader(session, "gone@example.com").status == "pending"
        assert subscribers.reader(session, "active@example.com").status == "active"


async def test_consent_is_recorded_and_the_name_made_safe(db: Database, settings) -> None:
    async with client(make_app(settings, db), ip="198.51.100.4") as http:
        await http.post(
            "/subscribe",
            data={
                "email": "Ann@Example.com",
                "name": "Ann\r\nBcc: victim@example.org",
                "cadence": "weekly",
                "topics": ["World", "Tech"],
                "source": "sidebar",
            },
            headers={"user-agent": "Test Browser/1.0"},
        )
    with db.transaction() as session:
        ann = subscribers.reader(session, "ann@example.com")
    assert ann.status == SubscriberStatus.PENDING.value
    assert "\r" not in ann.name and "\n" not in ann.name
    assert ann.cadence == "weekly" and ann.topics == ["World", "Tech"]
    assert ann.consent_ip == "198.51.100.4"
    assert ann.consent_user_agent == "Test Browser/1.0"
    assert ann.consent_source == "sidebar"
    assert ann.consent_wording == settings.consent_wording
    ((delivery, body),) = confirm_mails(db, "ann@example.com")
    assert delivery.period_key is None and delivery.message_id.startswith("<")
    assert "Bcc:" not in body.subject
    # The queued mail is complete: its link (in text and HTML) is for this subscriber.
    assert confirm_link(body).startswith(settings.base_url + "/confirm/")
    assert "%%" not in body.text


async def test_topics_as_a_comma_string_from_json(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        r = await http.post("/subscribe", json={"email": "t@example.com", "topics": "World, Tech"})
    assert r.status_code == 202
    with db.transaction() as session:
        assert subscribers.reader(session, "t@example.com").topics == ["World", "Tech"]


async def test_at_most_three_confirmations_a_day(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        answers = {
            (r.status_code, r.text)
            for r in [
                await http.post("/subscribe", json={"email": "v@example.com"}) for _ in range(5)
            ]
        }
    assert len(answers) == 1
    assert len(confirm_mails(db, "v@example.com")) == settings.confirm_limit == 3


async def test_per_ip_limit_answers_429_with_retry_after(db: Database, settings) -> None:
    app = make_app(settings, db)
    async with client(app, ip="192.0.2.9") as http:
        for i in range(settings.ip_limit):
            r = await http.post("/subscribe", json={"email": f"p{i}@example.com"})
            assert r.status_code == 202
        refused = await http.post("/subscribe", json={"email": "p-last@example.com"})
        page = await http.post("/subscribe", data={"email": "p-last@example.com"}, headers=HTML)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "too many" in refused.json()["error"]
    assert page.status_code == 429 and "Too many requests" in page.text
    assert confirm_mails(db, "p-last@example.com") == []
    async with client(app, ip="192.0.2.10") as other:
        assert (await other.post("/subscribe", json={"email": "q@example.com"})).status_code == 202


async def test_forwarded_for_is_read_only_from_a_trusted_proxy(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url, trusted_proxies="10.0.0.0/8", ip_limit=1)
    app = make_app(settings, db)
    async with client(app, ip="10.1.2.3") as proxy:
        a = await proxy.post(
            "/subscribe",
            json={"email": "x1@example.com"},
            headers={"x-forwarded-for": "1.1.1.1, 198.51.100.1"},
        )
        b = await proxy.post(
            "/subscribe",
            json={"email": "x2@example.com"},
            headers={"x-forwarded-for": "198.51.100.2"},
        )
    async with client(app, ip="203.0.113.50") as direct:
        c = await direct.post(
            "/subscribe",
            json={"email": "x3@example.com"},
            headers={"x-forwarded-for": "198.51.100.3"},
        )
        d = await direct.post(
            "/subscribe",
            json={"email": "x4@example.com"},
            headers={"x-forwarded-for": "198.51.100.4"},
        )
    # Two clients behind the proxy are two clients; one direct client is one, whatever it says.
    assert (a.status_code, b.status_code, c.status_code, d.status_code) == (202, 202, 202, 429)
    with db.transaction() as session:
        assert subscribers.reader(session, "x1@example.com").consent_ip == "198.51.100.1"
        assert subscribers.reader(session, "x3@example.com").consent_ip == "203.0.113.50"


async def test_honeypot_and_blocked_domains_look_like_success(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url, blocked_domains="mailinator.com")
    async with client(make_app(settings, db)) as http:
        normal = await http.post("/subscribe", data={"email": "ok@example.com"})
        bot = await http.post(
            "/subscribe", data={"email": "bot@example.com", "website": "x.example"}
        )
        blocked = await http.post("/subscribe", data={"email": "b@mailinator.com"})
        sub = await http.post("/subscribe", data={"email": "b@eu.mailinator.com"})
    assert {(r.status_code, r.text) for r in (normal, bot, blocked, sub)} == {
        (normal.status_code, normal.text)
    }
    assert _count(db, Subscriber) == 1
    assert _count(db, Delivery) == 1


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"data": {"name": "no email"}}, 422, "email"),
        ({"data": {"email": "not-an-address"}}, 422, "not a valid email address"),
        ({"data": {"email": "a@example.com", "cadence": "hourly"}}, 422, "cadence"),
        (
            {"content": b"email=a@example.com", "headers": {"content-type": "text/plain"}},
            415,
            "form",
        ),
        ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ({"json": ["a@example.com"]}, 422, "JSON object"),
        ({"json": {"email": {"x": 1}}}, 422, "string"),
        (
            {
                "content": b"email=" + b"a" * 20000,
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            413,
            "16 KB",
        ),
        (
            {
                "content": b"email=%ff%fe",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            422,
            "UTF-8",
        ),
    ],
)
async def test_bad_requests_get_a_clear_4xx(
    sqlite_db: Database, make_settings, kwargs, status, says
) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    async with client(make_app(settings, sqlite_db)) as http:
        as_json = await http.post(
            "/subscribe",
            **{**kwargs, "headers": {**kwargs.get("headers", {}), "accept": "application/json"}},
        )
        as_page = await http.post(
            "/subscribe",
            **{**kwargs, "headers": {**kwargs.get("headers", {}), "accept": "text/html"}},
        )
    assert as_json.status_code == status and says in as_json.json()["error"]
    sent_json = "json" in kwargs or "json" in kwargs.get("headers", {}).get("content-type", "")
    assert as_page.status_code == status
    # A client that sent JSON reads JSON back, whatever it accepts; a form gets a page.
    assert says.lower() in (as_page.json()["error"] if sent_json else as_page.text).lower()
    assert _count(sqlite_db, Subscriber) == 0


async def test_cors_only_for_configured_origins(sqlite_db: Database, make_settings) -> None:
    settings = make_settings(database_url=sqlite_db.url, cors_origins="https://news.example")
    async with client(make_app(settings, sqlite_db)) as http:
        preflight = await http.options(
            "/subscribe",
            headers={
                "origin": "https://news.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        ok = await http.post(
            "/subscribe",
            json={"email": "c@example.com"},
            headers={"origin": "https://news.example"},
        )
        other = await http.post(
            "/subscribe",
            json={"email": "d@example.com"},
            headers={"origin": "https://evil.example"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://news.example"
    assert ok.headers["access-control-allow-origin"] == "https://news.example"
    assert "access-control-allow-origin" not in other.headers


async def test_posting_a_multipart_form_works(sqlite_db: Database, make_settings) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    async with client(make_app(settings, sqlite_db)) as http:
        r = await http.post(
            "/subscribe", files={"email": (None, "m@example.com"), "topics": (None, "World")}
        )
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert len(confirm_mails(sqlite_db, "m@example.com")) == 1


async def test_many_at_once_are_all_kept_once(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url, ip_limit=1000)
    app = make_app(settings, db)
    emails = [f"crowd{i}@example.com" for i in range(30)] + ["same@example.com"] * 10
    async with client(app) as http:
        answers = await asyncio.gather(
            *(http.post("/subscribe", json={"email": e}) for e in emails)
        )
    app.state.writer.close()
    assert {r.status_code for r in answers} == {202}
    assert _count(db, Subscriber) == 31
    assert len(confirm_mails(db, "same@example.com")) == settings.confirm_limit


async def test_two_web_processes_together_send_no_more_than_the_limit(
    db: Database, make_settings
) -> None:
    """Two apps (two batch writers, as two web processes would have) share one store: a burst
    for one known address split between them still queues at most ``confirm_limit`` mails."""
    settings = make_settings(database_url=db.url, ip_limit=1000)
    _seed_states(db)  # pending@ has had no confirmation mail yet
    apps = [make_app(settings, db), make_app(settings, db)]
    async with client(apps[0]) as one, client(apps[1]) as two:
        answers = await asyncio.gather(
            *(
                http.post("/subscribe", json={"email": "pending@example.com"})
                for http in [one, two] * 8
            )
        )
    for app in apps:
        app.state.writer.close()
    assert {r.status_code for r in answers} == {202}
    assert len(confirm_mails(db, "pending@example.com")) == settings.confirm_limit


async def test_one_failing_request_undoes_only_itself(db: Database) -> None:
    writer = BatchWriter(db)

    def add(email: str, fail: bool = False):  # type: ignore[no-untyped-def]
        def job(session):  # type: ignore[no-untyped-def]
            subscriptions.add(session, email)
            if fail:
                raise InvalidInput("refused after writing")
            return email

        return job

    try:
        results = await asyncio.gather(
            writer.run(add("w1@example.com")),
            writer.run(add("w2@example.com", fail=True)),
            writer.run(add("w3@example.com")),
            return_exceptions=True,
        )
    finally:
        writer.close()
    assert results[0] == "w1@example.com" and results[2] == "w3@example.com"
    assert isinstance(results[1], InvalidInput)
    with db.transaction() as session:
        emails = set(session.exec(select(Subscriber.email)).all())
    assert emails == {"w1@example.com", "w3@example.com"}


async def test_unencodable_text_neither_reveals_subscribers_nor_fails_other_requests(
    db: Database, settings
) -> None:
    """A lone surrogate ("\\ud800" in JSON) once gave 500 for new addresses and 202 for active
    ones, and failed every request batched with it (found in review)."""
    _seed_states(db)
    app = make_app(settings, db)
    bad = '{"email": "%s", "name": "\\ud800", "source": "\\udfff", "topics": ["\\ud800"]}'
    async with client(app) as http:
        probes = [
            http.post("/subscribe", content=(bad % f"{who}@example.com").encode(),
                      headers={"content-type": "application/json"})
            for who in ("new", "active")
        ]  # fmt: skip
        others = [http.post("/subscribe", json={"email": f"ok{i}@example.com"}) for i in range(10)]
        answers = await asyncio.gather(*probes, *others)
    assert {(r.status_code, r.text) for r in answers[:2]} == {(answers[0].status_code,
                                                               answers[0].text)}  # fmt: skip
    assert [r.status_code for r in answers] == [202] * 12
    with db.transaction() as session:
        stored = session.exec(select(func.count()).where(Subscriber.email.like("ok%"))).one()
    assert stored == 10


async def test_the_confirmation_mail_carries_none_of_the_strangers_text(
    db: Database, make_settings
) -> None:
    """Anyone may type any address and any name: the site's mail to that address once greeted
    its owner with the name ("Hello URGENT: your account...") and put it in the To: line."""
    hostile = "URGENT verify your bank at https://evil.example/login now"
    server = start_server(RecordingHandler())
    try:
        settings = make_settings(database_url=db.url, smtp_url=server.url)
        async with client(make_app(settings, db)) as http:
            answer = await http.post(
                "/subscribe", data={"email": "victim@example.com", "name": hostile}
            )
        assert answer.status_code == 200
        report = await asyncio.to_thread(drain, settings, db)
        assert report.sent == 1
    finally:
        server.stop()
    (received,) = server.handler.received
    message = BytesParser(policy=policy.default).parsebytes(received.data)
    assert message["To"] == "victim@example.com"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    for part in (received.data.decode("ascii", "replace"), text.get_content(), html.get_content()):
        for piece in ("URGENT", "evil.example", "bank"):
            assert piece not in part
    assert "Hello," in text.get_content()
    with db.transaction() as session:  # what they typed is kept, for once they confirm
        assert subscribers.reader(session, "victim@example.com").name == hostile


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"email": 'not-an-address"><script>x</script>'}, "email", "not a valid email address"),
        ({"email": "", "cadence": "weekly"}, "email", "email address"),
        ({"email": "WHO@example.com", "cadence": "hourly"}, "cadence", "daily or weekly"),
    ],
)
async def test_a_form_with_a_mistake_comes_back_as_typed(
    db: Database, settings, form: dict[str, str], field: str, says: str
) -> None:
    """A reader who mistyped once lost everything they had entered and saw a bare error page."""
    _seed_states(db)
    typed = {"name": 'Ann "<b>" O\'Neil', "topics": ["Tech", "Local & Met"], **form}
    pages = {}
    async with client(make_app(settings, db)) as http:
        for who in ("new", "active"):
            data = {k: v.replace("WHO", who) if isinstance(v, str) else v for k, v in typed.items()}
            pages[who] = await http.post("/subscribe", data=data, headers=HTML)
    page = pages["new"]
    assert page.status_code == 422
    text = page.text
    # What they typed is back in the fields, escaped, with the reason next to the one to fix.
    assert 'value="Ann &#34;&lt;b&gt;&#34; O&#39;Neil"' in text
    assert 'value="Local &amp; Met" checked' in text and 'value="Tech" checked' in text
    assert "<script>x</script>" not in text
    if form["email"]:
        expected = form["email"].replace("WHO", "new").replace('"', "&#34;").replace("<", "&lt;")
        assert f'value="{expected.replace(">", "&gt;")}"' in text
    assert f'aria-invalid="true" aria-describedby="{field}-error"' in text
    error = text.split(f'id="{field}-error">', 1)[1].split("</p>", 1)[0]
    assert says in error
    assert text.count('aria-invalid="true"') == 1
    if form.get("cadence") == "weekly":
        assert 'value="weekly" checked' in text
    # Known or not, the address makes no other difference to the answer.
    other = pages["active"]
    assert other.status_code == 422
    assert other.text.replace("active@", "new@") == text
    assert _count(db, Subscriber) == 3
