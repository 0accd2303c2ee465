"""Several newsletters over HTTP on both stores: subscribing to some, the preference centre, and
what an unsubscribe link leaves."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx

from digest import newsletters, subscribers, subscriptions
from digest.db import Database
from digest.links import preferences_url, unsubscribe_url
from digest.newsletters import FIRST
from digest.subscribers import Reader
from digest.tokens import Purpose, verify_scoped
from tests.support.forms import edit, form_fields
from tests.support.web import HTML, JSON, client, confirm_link, confirm_mails, make_app, path_of

FORM = {"content-type": "application/x-www-form-urlencoded", **HTML}


def _world(db: Database) -> dict[str, int]:
    """Newsletter 1, Sports Weekly (weekly only), Science (public), Staff (private), Old
    (archived): their ids by slug."""
    with db.transaction() as session:
        first = newsletters.by_id(session, FIRST)
        sports = newsletters.add(
            session,
            "sports",
            name="Sports Weekly",
            description="Scores and stories, every Friday.",
            cadences=["weekly"],
            topics=["Football", "Tennis"],
        )
        science = newsletters.add(session, "science", name="Science", description="Discoveries.")
        staff = newsletters.add(session, "staff-nl", name="Staff Notes", public=False)
        old = newsletters.add(session, "retired-nl", name="Old News")
        newsletters.archive(session, old)
        return {
            "first": int(first.id or 0),
            "first-slug": first.slug,  # type: ignore[dict-item]
            "sports": int(sports.id or 0),
            "science": int(science.id or 0),
            "staff": int(staff.id or 0),
            "old": int(old.id or 0),
        }


def _statuses(db: Database, email: str) -> dict[int, str]:
    with db.transaction() as session:
        person = subscribers.get(session, email)
        return {s.newsletter_id: s.status for s in subscribers.subscriptions_of(session, person.id)}


def _reader(db: Database, email: str, newsletter_id: int) -> Reader:
    with db.transaction() as session:
        found = subscribers.reader(session, email, newsletter_id)
        session.expunge_all()
        return found


async def _post_form(http: httpx.AsyncClient, path: str, fields: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return await http.post(path, content=urlencode(fields).encode(), headers=FORM)


# -- subscribing to several -----------------------------------------------------------------------


async def test_one_request_for_two_newsletters_sends_one_mail_and_confirms_both(
    db: Database, settings
) -> None:
    ids = _world(db)
    first = ids["first-slug"]
    async with client(make_app(settings, db)) as http:
        page = await http.get("/")
        form = await http.post(
            "/subscribe", data={"email": "ann@example.com", "newsletters": f"{first},sports"}
        )
        api_list = await http.post(
            "/subscribe", json={"email": "bob@example.com", "newsletters": ["sports", "science"]}
        )
        api_text = await http.post(
            "/subscribe", json={"email": "cy@example.com", "newsletters": "sports, science"}
        )
        assert form.status_code == 200 and "Check your inbox" in form.text
        assert api_list.status_code == api_text.status_code == 202
        # The page offers the public live ones, each description under its own box.
        for slug in (first, "sports", "science"):
            assert f'name="newsletters" value="{slug}"' in page.text
        assert "staff-nl" not in page.text and "Old News" not in page.text
        assert 'aria-describedby="nl-sports-about"' in page.text
        assert '<p class="hint" id="nl-sports-about">Scores and stories' in page.text
        assert _statuses(db, "ann@example.com") == {
            ids["first"]: "pending",
            ids["sports"]: "pending",
        }
        assert _statuses(db, "bob@example.com") == {
            ids["sports"]: "pending",
            ids["science"]: "pending",
        }
        assert _statuses(db, "cy@example.com") == _statuses(db, "bob@example.com")
        mails = confirm_mails(db, "ann@example.com")
        assert len(mails) == 1
        # The one mail names both, and Bob's his own two.
        assert "(digest, Sports Weekly)" in mails[0][1].text
        [(_, bob)] = confirm_mails(db, "bob@example.com")
        assert "(Sports Weekly, Science)" in bob.text and "Sports Weekly, Science" in bob.html
        confirmed = await http.post(path_of(confirm_link(mails[0][1])))
    assert confirmed.status_code == 200
    assert _statuses(db, "ann@example.com") == {ids["first"]: "active", ids["sports"]: "active"}


async def test_unknown_archived_and_private_newsletters_are_refused_alike(
    db: Database, settings
) -> None:
    ids = _world(db)
    async with client(make_app(settings, db)) as http:
        answers = {}
        for slug in ("nope-nl", "retired-nl", "staff-nl"):
            api = await http.post(
                "/subscribe", json={"email": "x@example.com", "newsletters": ["sports", slug]}
            )
            form = await http.post(
                "/subscribe",
                data={"email": "x@example.com", "newsletters": ["sports", slug]},
                headers=HTML,
            )
            answers[slug] = (
                api.status_code,
                api.json()["error"].replace(slug, "?"),
                form.status_code,
                form.text.replace(slug, "?"),
            )
    assert len(set(answers.values())) == 1
    status, error, form_status, page = answers["staff-nl"]
    assert status == form_status == 422
    assert error.startswith("newsletters:")
    # The reason sits beside the newsletters field, which is marked invalid.
    assert 'id="newsletters-error"' in page and 'aria-invalid="true"' in page
    assert "Staff Notes" not in page
    with db.transaction() as session:
        assert subscribers.find(session, "x@example.com") is None
    assert ids["staff"] != FIRST


async def test_the_answer_tells_nothing_of_the_address_with_newsletters(
    db: Database, settings
) -> None:
    _world(db)
    with db.transaction() as session:
        subscriptions.add(session, "known@example.com", newsletter_id=FIRST, confirmed=True)
    async with client(make_app(settings, db)) as http:
        answers = set()
        for who in ("known", "stranger"):
            form = await http.post(
                "/subscribe",
                data={"email": f"{who}@example.com", "newsletters": "sports"},
                headers=HTML,
            )
            api = await http.post(
                "/subscribe", json={"email": f"{who}@example.com", "newsletters": ["sports"]}
            )
            answers.add((form.status_code, form.text, api.status_code, api.text))
    assert len(answers) == 1


async def test_with_one_newsletter_and_no_field_it_is_as_before(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        page = await http.get("/")
        r = await http.post("/subscribe", json={"email": "solo@example.com"})
    assert 'name="newsletters"' not in page.text
    assert r.status_code == 202
    assert _statuses(db, "solo@example.com") == {FIRST: "pending"}
    assert len(confirm_mails(db, "solo@example.com")) == 1


# -- the preference centre ------------------------------------------------------------------------


def _on_two(db: Database, ids: dict[str, int]) -> Reader:
    """ann@ on newsletter 1 (daily, World) and Sports Weekly (Football)."""
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.com", confirmed=True, topics=["World"])
        return subscriptions.add(
            session,
            "ann@example.com",
            newsletter_id=ids["sports"],
            cadence="weekly",
            topics=["Football"],
            confirmed=True,
        )


async def test_the_centre_lists_every_newsletter_and_changes_one_only(
    db: Database, settings
) -> None:
    ids = _world(db)
    ann = _on_two(db, ids)
    path = path_of(preferences_url(settings, ann.id, ann.email))
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        assert page.status_code == 200
        text = page.text
        # Both newsletters she is on, and the public one she could join; nothing private.
        assert "Sports Weekly" in text and "Science" in text and "Join Science" in text
        assert "Staff Notes" not in text and "Old News" not in text
        assert f'name="cadence-{ids["first"]}" value="weekly"' in text
        # Sports Weekly comes weekly only: no daily choice is offered for it.
        assert f'name="cadence-{ids["sports"]}"' not in text and "Sent weekly." in text
        assert f'name="topics-{ids["sports"]}" value="Tennis"' in text
        # Zone, hour and name once.
        assert text.count('name="timezone"') == text.count('name="send_hour"') == 1
        fields = form_fields(text, path)
        saved = await _post_form(
            http,
            path,
            edit(
                fields,
                put={f"cadence-{ids['first']}": "weekly", "send_hour": "9", "name": "Ann"},
            ),
        )
    assert saved.status_code == 200 and "Saved" in saved.text
    first, sports = _reader(db, ann.email, ids["first"]), _reader(db, ann.email, ids["sports"])
    assert (first.cadence, first.topics, first.status) == ("weekly", ["World"], "active")
    assert (sports.cadence, sports.topics, sports.status) == ("weekly", ["Football"], "active")
    assert (first.send_hour, first.name) == (9, "Ann")


async def test_leaving_one_and_joining_another_from_the_centre(db: Database, settings) -> None:
    ids = _world(db)
    ann = _on_two(db, ids)
    path = path_of(preferences_url(settings, ann.id, ann.email))
    async with client(make_app(settings, db)) as http:
        fields = form_fields((await http.get(path)).text, path)
        r = await _post_form(
            http,
            path,
            edit(
                fields,
                untick=(("subscribed", str(ids["sports"])),),
                tick=(("subscribed", str(ids["science"])), (f"topics-{ids['science']}", "Space")),
            ),
        )
        assert r.status_code == 200
        again = await http.get(path)
    assert _statuses(db, ann.email) == {
        ids["first"]: "active",
        ids["sports"]: "unsubscribed",
        ids["science"]: "active",
    }
    science = _reader(db, ann.email, ids["science"])
    assert science.subscription.consent_source == "preferences"
    assert science.subscription.confirmed_at is not None and science.topics == ["Space"]
    # Sports Weekly is public: she can join it again from the same page.
    assert "Join Sports Weekly" in again.text and "Not subscribed (you left)" in again.text


async def test_a_bad_value_saves_nothing_and_says_why(db: Database, settings) -> None:
    ids = _world(db)
    ann = _on_two(db, ids)
    path = path_of(preferences_url(settings, ann.id, ann.email))
    async with client(make_app(settings, db)) as http:
        fields = form_fields((await http.get(path)).text, path)
        leave_and_bad_hour = edit(
            fields,
            untick=(("subscribed", str(ids["sports"])),),
            put={f"cadence-{ids['first']}": "weekly", "send_hour": "25"},
        )
        bad_hour = await _post_form(http, path, leave_and_bad_hour)
        daily_sports = await _post_form(
            http, path, edit(fields, put={f"cadence-{ids['sports']}": "daily"})
        )
        private = await _post_form(
            http, path, edit(fields, tick=(("subscribed", str(ids["staff"])),))
        )
        unknown = await _post_form(http, path, edit(fields, tick=(("subscribed", "999"),)))
    assert bad_hour.status_code == 422 and "0-23" in bad_hour.text
    assert 'id="send_hour-error"' in bad_hour.text and "Nothing was saved" in bad_hour.text
    # The form comes back as typed: Sports Weekly still shows unticked, as she left it.
    assert f'name="subscribed" value="{ids["sports"]}" checked' not in bad_hour.text
    assert (
        daily_sports.status_code == 422 and "Sports Weekly comes weekly only" in daily_sports.text
    )
    assert private.status_code == unknown.status_code == 422
    assert "Staff Notes" not in private.text
    assert private.text.count("no such newsletter") == unknown.text.count("no such newsletter") == 1
    assert _statuses(db, ann.email) == {ids["first"]: "active", ids["sports"]: "active"}
    assert _reader(db, ann.email, ids["first"]).cadence == "daily"


async def test_unsubscribe_from_all_from_the_centre(db: Database, settings) -> None:
    ids = _world(db)
    ann = _on_two(db, ids)
    path = path_of(preferences_url(settings, ann.id, ann.email))
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        assert "Unsubscribe from all" in page.text
        # The button posts to an unsubscribe link of theirs that leaves every newsletter.
        [token] = re.findall(r'action="/unsubscribe/([^"/]+)"', page.text)
        assert verify_scoped(settings.secret, token, Purpose.UNSUBSCRIBE)[::2] == (ann.id, "all")
        left = await http.post(f"/unsubscribe/{token}", data={}, headers=HTML)
    assert left.status_code == 200 and "you left every newsletter" in left.text
    assert _statuses(db, ann.email) == {ids["first"]: "unsubscribed", ids["sports"]: "unsubscribed"}


# -- unsubscribe links ----------------------------------------------------------------------------


async def test_an_unsubscribe_link_names_what_it_leaves_and_what_remains(
    db: Database, settings
) -> None:
    ids = _world(db)
    ann = _on_two(db, ids)
    one = path_of(unsubscribe_url(settings, ann.id, ann.email, ids["sports"]))
    every = path_of(unsubscribe_url(settings, ann.id, ann.email, None))
    async with client(make_app(settings, db)) as http:
        ask_one = await http.get(one)
        ask_all = await http.get(every)
        assert "<strong>Sports Weekly</strong>" in ask_one.text
        assert "Unsubscribe from Sports Weekly" in ask_one.text
        assert "every newsletter" in ask_all.text
        done = await http.post(one, data={}, headers=HTML)
        one_click = await http.post(
            one,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        api = await http.post(one, headers=JSON)
    assert done.status_code == 200 and "no more <strong>Sports Weekly</strong>" in done.text
    assert "You are still on" in done.text
    with db.transaction() as session:
        assert newsletters.by_id(session, ids["first"]).name in done.text
    assert "/preferences/" in done.text
    assert one_click.status_code == 200 and "location" not in one_click.headers
    assert api.status_code == 200 and api.json() == {"status": "unsubscribed"}
    assert _statuses(db, ann.email) == {ids["first"]: "active", ids["sports"]: "unsubscribed"}
