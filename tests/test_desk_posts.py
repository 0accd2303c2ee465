"""The desk's Posts section on SQLite and PostgreSQL: the latest posts with why each is
featured, the Don't Miss strip, featuring with an end time, unfeaturing, marking breaking news,
all audited; a viewer may look but not change."""

from __future__ import annotations

import asyncio
import re
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, example, given
from hypothesis import settings as h_settings
from hypothesis import strategies as st
from sqlmodel import select

from digest import audit
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.models import Post
from digest.models_campaigns import Alert
from digest.posts import store
from digest.posts.featuring import is_featured
from tests.support.alerts import post, readers
from tests.support.desk import desk_client
from tests.support.web import make_app

ZONE = "Europe/Berlin"


@pytest.fixture
def cfg(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, timezone=ZONE, featured_categories="Don't Miss")


def featured_now(db: Database, pid: int, settings: Settings) -> tuple[bool, datetime | None]:
    """What ``digest posts list --json`` says of the post: featured now, and until when."""
    with db.transaction() as session:
        row = store.find_post(session, str(pid))
        return is_featured(row, settings.featured_categories, utcnow()), row.featured_until


def entries(db: Database, action: str) -> list[dict]:  # type: ignore[type-arg]
    with db.transaction() as session:
        return [audit.as_dict(e) for e in audit.recent(session, action=action)]


async def test_posts_page_lists_posts_with_why_featured(db: Database, cfg: Settings) -> None:
    plain = post(db, "Council meets on budget")
    in_category = post(db, "Flood warnings tonight", categories=["Don’t Miss"])
    with db.transaction() as session:
        session.get(Post, plain).source = "https://news.example.com/feed/"  # type: ignore[union-attr]
    http, _ = await desk_client(make_app(cfg, db), db, "viewer")
    async with aclosing(http):
        page = await http.get("/desk/posts")
    assert page.status_code == 200
    html = page.text
    assert "Council meets on budget" in html and "https://news.example.com/feed/" in html
    assert "in the featured category Don’t Miss" in html
    # The strip: what the composer would put under Don't Miss now, and the order explained.
    strip = html.split("Don't Miss now")[1].split("Latest posts")[0]
    assert "Flood warnings tonight" in strip and "Council meets on budget" not in strip
    assert "newest published first" in strip
    assert f'href="/desk/posts/{in_category}"' in strip


async def test_latest_posts_page_by_page(db: Database, cfg: Settings) -> None:
    base = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    for i in range(53):
        post(db, f"Story number {i:02d}", first_seen_at=base + timedelta(hours=i))
    http, _ = await desk_client(make_app(cfg, db), db, "viewer")
    async with aclosing(http):
        first = await http.get("/desk/posts")
        older = re.search(r'href="(/desk/posts\?before=[^"]+)"', first.text)
        assert older, "no link to older posts"
        second = await http.get(older.group(1).replace("&amp;", "&"))
        damaged = await http.get("/desk/posts?before=yesterday")
    assert "Story number 52" in first.text and "Story number 03" in first.text
    assert "Story number 02" not in first.text
    assert "Story number 02" in second.text and "Story number 00" in second.text
    assert "Story number 03" not in second.text
    assert damaged.status_code == 422 and "damaged" in damaged.text


async def test_feature_until_then_unfeature_audited(db: Database, cfg: Settings) -> None:
    pid = post(db, "Storm closes bridge")
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    local_end = (
        (utcnow() + timedelta(days=2)).astimezone(ZoneInfo(ZONE)).replace(second=0, microsecond=0)
    )
    async with aclosing(http):
        answer = await http.post(
            f"/desk/posts/{pid}/feature",
            data={"csrf_token": csrf, "until": local_end.strftime("%Y-%m-%dT%H:%M")},
        )
        assert answer.status_code == 303
        shown = await http.get(answer.headers["location"])
        assert "The post is featured." in shown.text
        assert "featured by an editor" in shown.text
        assert "editor@newsroom.example via desk" in shown.text
        assert ZONE in shown.text  # the page says which zone the end time is read in
        featured, until = featured_now(db, pid, cfg)
        assert featured and until == local_end.astimezone(UTC)

        answer = await http.post(f"/desk/posts/{pid}/unfeature", data={"csrf_token": csrf})
        assert answer.status_code == 303
    assert featured_now(db, pid, cfg) == (False, None)
    [unfeatured] = entries(db, "post.unfeature")
    [featured_entry] = entries(db, "post.feature")
    assert featured_entry["actor"] == "editor@newsroom.example"
    assert featured_entry["target"] == f"post {pid}"
    assert featured_entry["before"]["until"] is None
    assert datetime.fromisoformat(featured_entry["after"]["until"]) == local_end
    assert unfeatured["before"]["until"] == featured_entry["after"]["until"]
    assert unfeatured["after"] == {"featured": False, "newsletters": [], "until": None}


@pytest.mark.parametrize(
    "until, says",
    [
        ("tomorrow at six", "like 2026-12-01T18:00"),
        ("2001-01-01T10:00", "has passed"),
        ("9999-12-31T23:59", ""),
        ("0001-01-01T00:00", ""),
    ],
)
async def test_bad_end_time_reshown_beside_the_field(
    db: Database, cfg: Settings, until: str, says: str
) -> None:
    pid = post(db, "Storm closes bridge")
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        answer = await http.post(
            f"/desk/posts/{pid}/feature", data={"csrf_token": csrf, "until": until}
        )
    if until.startswith("9999"):  # far but valid: featured until then
        assert answer.status_code == 303
        return
    assert answer.status_code == 422
    assert f'value="{until}"' in answer.text
    assert 'class="field-error" id="until-error"' in answer.text and says in answer.text
    assert featured_now(db, pid, cfg) == (False, None)
    assert entries(db, "post.feature") == []


async def test_mark_breaking_queues_an_alert_once(db: Database, cfg: Settings) -> None:
    pid = post(db, "Bridge closed after storm")
    readers(db, ["ana@example.com", "ben@example.com"])
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        first = await http.post(f"/desk/posts/{pid}/alert", data={"csrf_token": csrf})
        assert first.status_code == 303
        page = await http.get(first.headers["location"])
        again = await http.post(f"/desk/posts/{pid}/alert", data={"csrf_token": csrf})
        listed = await http.get("/desk/posts")
    assert "The alert is queued" in page.text and "raised in" in page.text
    with db.transaction() as session:
        [row] = session.exec(select(Alert)).all()
    # Both readers have it: queued, or held by quiet hours at this hour of the night.
    assert row.post_id == pid and row.queued + row.held_quiet + row.held_budget == 2
    assert again.status_code == 409
    assert "already alerted" in again.text and 'id="alert_in-error"' in again.text
    assert "badge warn" in listed.text
    [entry] = entries(db, "post.alert")
    assert entry["before"] == {"alerted_in": []} and entry["after"]["alert"] == row.id


async def test_alert_refused_when_nobody_opted_in(db: Database, cfg: Settings) -> None:
    pid = post(db, "Bridge closed after storm")
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        answer = await http.post(f"/desk/posts/{pid}/alert", data={"csrf_token": csrf})
    assert answer.status_code == 409 and "nobody has opted in" in answer.text
    with db.transaction() as session:
        assert session.exec(select(Alert)).all() == []


async def test_unknown_post_is_a_404_page(db: Database, cfg: Settings) -> None:
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        missing = await http.get("/desk/posts/999")
        posted = await http.post("/desk/posts/999/feature", data={"csrf_token": csrf})
        silly = await http.get("/desk/posts/not-a-number")
    assert missing.status_code == 404 and "There is no post 999" in missing.text
    assert posted.status_code == 404
    assert silly.status_code == 422


async def test_viewer_may_look_but_not_change(db: Database, cfg: Settings) -> None:
    pid = post(db, "Storm closes bridge")
    readers(db, ["ana@example.com"])
    http, csrf = await desk_client(make_app(cfg, db), db, "viewer")
    async with aclosing(http):
        page = await http.get(f"/desk/posts/{pid}")
        assert page.status_code == 200 and "Mark breaking" not in page.text
        for action in ("feature", "unfeature", "alert"):
            answer = await http.post(f"/desk/posts/{pid}/{action}", data={"csrf_token": csrf})
            assert answer.status_code == 403, action
    assert featured_now(db, pid, cfg) == (False, None)
    with db.transaction() as session:
        assert session.exec(select(Alert)).all() == []


FIELD_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", "\x00", "daily", "2026-13-45T99:99", "9999-12-31T23:59", "-1", "x" * 3000, "1"]
    ),
)
ACTIONS = [
    "/desk/posts/{pid}/feature",
    "/desk/posts/{pid}/unfeature",
    "/desk/posts/{pid}/alert",
    "/desk/feeds/poll",
    "/desk/feeds/remove",
    "/desk/feeds/add",
]


@h_settings(
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    action=st.sampled_from(ACTIONS),
    pid=st.one_of(st.sampled_from(["1", "999", "0", "-3", "abc", "99999999999"]), st.text()),
    fields=st.dictionaries(
        st.sampled_from(["until", "feature_in", "alert_in", "url", "confirm", "before"]),
        FIELD_VALUES,
        max_size=4,
    ),
    before=st.one_of(st.none(), FIELD_VALUES),
)
@example("/desk/posts/{pid}/feature", "1", {"feature_in": "\x00", "until": "\x00"}, "\x00")
@example("/desk/posts/{pid}/alert", "1", {"alert_in": "a\x00"}, "0001-01-01T00:00:00+14:00_5")
@example("/desk/posts/{pid}/unfeature", "1", {}, "9999-12-31T23:59:59-14:00_5")
@example("/desk/feeds/poll", "1", {"url": "http://a\x00.example/"}, None)
@example("/desk/feeds/remove", "1", {"url": "\x00", "confirm": "yes"}, None)
@example("/desk/feeds/add", "1", {"url": "http://\x00/"}, None)
def test_no_input_makes_a_500(  # type: ignore[no-untyped-def]
    desk_runner, action: str, pid: str, fields: dict[str, str], before: str | None
) -> None:
    run, csrf = desk_runner
    path = action.format(pid=quote(pid, safe=""))
    answer = run("POST", path, data={"csrf_token": csrf, **fields})
    assert answer.status_code < 500, answer.text
    page = run("GET", "/desk/posts", params={} if before is None else {"before": before})
    assert page.status_code < 500, page.text
    shown = run("GET", f"/desk/posts/{quote(pid, safe='')}")
    assert shown.status_code < 500, shown.text


@pytest.fixture
def desk_runner(db: Database, cfg: Settings):  # type: ignore[no-untyped-def]
    """An editor's signed-in client on one event loop for every example."""
    post(db, "Storm closes bridge")
    with asyncio.Runner() as runner:
        http, csrf = runner.run(desk_client(make_app(cfg, db), db, "editor"))
        yield (lambda *a, **kw: runner.run(http.request(*a, **kw))), csrf
        runner.run(http.aclose())
